"""Entry point: ``python -m integr8scode_dlq_processor`` (or the ``integr8scode-dlq-processor``
script).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from integr8scode_dlq_processor.app import create_app
from integr8scode_dlq_processor.config import InsecureConfigError, Settings
from integr8scode_telemetry import configure_logging, probe_live

EXIT_CONFIG = 2


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    # Uvicorn handles SIGTERM itself (drain, lifespan shutdown) and then re-raises it to the
    # handler that was installed before it; this one turns that into a clean exit status 0.
    # A SIGTERM that arrives before the server runs ends the process here as well.
    sys.exit(0)


def _refuse(problem: str) -> None:
    print(f"dlq-processor: invalid configuration: {problem}", file=sys.stderr)
    sys.exit(EXIT_CONFIG)


def main() -> None:
    """Read settings, serve until SIGTERM/SIGINT; uvicorn drains requests and runs the lifespan.
    A bad setting (e.g. ``DLQ_RETRY_POLICIES``) ends the start with a message and status 2."""
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        settings = Settings()
    except (ValidationError, SettingsError) as exc:
        _refuse(str(exc))
        return
    if sys.argv[1:] == ["healthcheck"]:  # the image's HEALTHCHECK: same settings, same port
        sys.exit(probe_live(settings.host, settings.port))
    configure_logging(settings.log_level)
    try:
        app = create_app(settings)
    except InsecureConfigError as exc:
        _refuse(str(exc))
        return
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
