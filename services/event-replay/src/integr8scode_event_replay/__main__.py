"""Entry point: ``python -m integr8scode_event_replay`` (or the ``integr8scode-event-replay``
script).

``integr8scode-event-replay healthcheck`` probes the running server (the image's ``HEALTHCHECK``).
Start-up, exit statuses and SIGTERM: ``integr8scode_telemetry.run_service``."""

from __future__ import annotations

import sys

from integr8scode_event_replay.app import create_app
from integr8scode_event_replay.config import InsecureConfigError, Settings
from integr8scode_telemetry import run_service


def main() -> None:
    """Read settings, serve until SIGTERM/SIGINT; uvicorn drains requests and runs the lifespan.
    A setting that is invalid or refused (no token secret outside local environments)
    ends the start with one line on stderr and status 2."""
    sys.exit(
        run_service(
            "integr8scode-event-replay",
            Settings,
            create_app,
            config_errors=(InsecureConfigError,),
        )
    )


if __name__ == "__main__":
    main()
