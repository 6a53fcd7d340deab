"""Entry point: ``python -m integr8scode_notifier`` (or the ``integr8scode-notifier`` script)."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import uvicorn

from integr8scode_notifier.app import create_app
from integr8scode_notifier.config import Settings
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
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
