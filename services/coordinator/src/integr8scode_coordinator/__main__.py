"""Entry point: ``python -m integr8scode_coordinator`` (or the ``integr8scode-coordinator`` script).

``integr8scode-coordinator healthcheck`` probes the running server (the image's ``HEALTHCHECK``).
Start-up, exit statuses and SIGTERM: ``integr8scode_telemetry.run_service``."""

from __future__ import annotations

import sys

from integr8scode_coordinator.app import create_app
from integr8scode_coordinator.config import Settings
from integr8scode_telemetry import run_service


def main() -> None:
    """Read settings, serve until SIGTERM/SIGINT; uvicorn drains requests and runs the lifespan.
    An invalid setting ends the start with one line on stderr and status 2."""
    sys.exit(
        run_service(
            "integr8scode-coordinator",
            Settings,
            create_app,
        )
    )


if __name__ == "__main__":
    main()
