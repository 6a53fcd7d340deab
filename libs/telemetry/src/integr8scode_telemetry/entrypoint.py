"""Every service's ``__main__``: read the settings, then serve, run the container health check,
or run one of the service's own commands.

One rule for a configuration the service can't start with (a setting that fails validation, or
one the composition root refuses, e.g. a missing secret outside local environments): one line
``<service>: invalid configuration: <problem>`` on stderr and exit status 2 (``EXIT_CONFIG``),
never a traceback. ``healthcheck`` answers 1 instead: container runtimes reserve 2 for a health
check. A command-line argument the service doesn't know is a usage error, status 2 as well.

Serving: uvicorn on the configured host and port, our log configuration (``log_config=None``),
no access log, requests drained for up to 10 s on SIGTERM/SIGINT while the lifespan shuts down.
Uvicorn handles SIGTERM itself and then re-raises it to the handler installed before it; that
handler turns it into exit status 0 (and ends a process that is not serving yet the same way).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any, NoReturn, Protocol, TypeVar

import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from integr8scode_telemetry.health import probe_live
from integr8scode_telemetry.logs import configure_logging

EXIT_CONFIG = 2
EXIT_UNHEALTHY = 1
HEALTHCHECK = "healthcheck"
GRACEFUL_SHUTDOWN_S = 10


class ServedSettings(Protocol):
    """What the entry point reads of a service's settings."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def log_level(self) -> str: ...


S = TypeVar("S", bound=ServedSettings)


def run_service(
    service: str,
    read_settings: Callable[[], S],
    create_app: Callable[[S], Any],
    *,
    config_errors: tuple[type[Exception], ...] = (),
    commands: Mapping[str, Callable[[S], int]] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Run a service's entry point and give its exit status (``sys.exit(run_service(...))``).

    ``read_settings`` is the service's ``Settings`` class (or a function that builds it);
    ``create_app(settings)`` its composition root. Besides pydantic's validation errors, the
    exceptions in ``config_errors`` raised by either of them mean "invalid configuration"
    (exit 2). No arguments: serve until SIGTERM/SIGINT. ``healthcheck``: probe
    ``/health/live`` on the configured port (0 or 1). A name in ``commands``: configure logging,
    run it with the settings and exit with what it returns. ``argv`` defaults to
    ``sys.argv[1:]``."""
    signal.signal(signal.SIGTERM, _exit_cleanly)
    args = list(sys.argv[1:] if argv is None else argv)
    commands = commands or {}
    if args not in ([], [HEALTHCHECK], *([name] for name in commands)):
        known = " | ".join([HEALTHCHECK, *commands])
        _say(f"{service}: unknown arguments {' '.join(args)!r}; usage: {service} [{known}]")
        return EXIT_CONFIG
    refused: tuple[type[Exception], ...] = (ValidationError, SettingsError, *config_errors)
    try:
        settings = read_settings()
    except refused as exc:
        _say(f"{service}: invalid configuration: {exc}")
        return EXIT_UNHEALTHY if args == [HEALTHCHECK] else EXIT_CONFIG
    if args == [HEALTHCHECK]:  # the image's HEALTHCHECK: same settings, same port
        return probe_live(settings.host, settings.port)
    configure_logging(settings.log_level)
    if args:
        return commands[args[0]](settings)
    try:
        app = create_app(settings)
    except refused as exc:
        _say(f"{service}: invalid configuration: {exc}")
        return EXIT_CONFIG
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> NoReturn:
    sys.exit(0)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
