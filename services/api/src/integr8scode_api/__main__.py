"""Entry point: ``python -m integr8scode_api`` (or the ``integr8scode-api`` script).

``integr8scode-api healthcheck`` probes the running server; ``integr8scode-api rotate-secrets``
re-seals every stored credential under the current key and exits (1 if any couldn't be)."""

from __future__ import annotations

import asyncio
import signal
import sys
from types import FrameType

import uvicorn

from integr8scode_api.app import create_app
from integr8scode_api.config import Settings
from integr8scode_api.domain.errors import DependencyUnavailable
from integr8scode_api.secrets_rotation import describe, rotate_secrets
from integr8scode_secrets import KeyRingError
from integr8scode_telemetry import configure_logging, probe_live


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    # Uvicorn handles SIGTERM itself (drain, lifespan shutdown) and then re-raises it to the
    # handler that was installed before it; this one turns that into a clean exit status 0.
    # A SIGTERM that arrives before the server runs ends the process here as well.
    sys.exit(0)


def main() -> None:
    """Read settings, serve until SIGTERM/SIGINT; uvicorn drains requests and runs the lifespan."""
    signal.signal(signal.SIGTERM, _exit_cleanly)
    settings = Settings()
    if sys.argv[1:] == ["healthcheck"]:  # the image's HEALTHCHECK: same settings, same port
        sys.exit(probe_live(settings.host, settings.port))
    configure_logging(settings.log_level)
    if sys.argv[1:] == ["rotate-secrets"]:
        sys.exit(_rotate(settings))
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def _rotate(settings: Settings) -> int:
    try:
        report = asyncio.run(rotate_secrets(settings))
    except (KeyRingError, DependencyUnavailable) as exc:
        print(f"rotate-secrets: {exc}", file=sys.stderr)
        return 2
    for line in describe(report):
        print(line)
    return 1 if report.failed else 0


if __name__ == "__main__":
    main()
