"""Entry point: ``python -m integr8scode_dlq_processor`` (or the ``integr8scode-dlq-processor``
script).

``integr8scode-dlq-processor healthcheck`` probes the running server (the image's ``HEALTHCHECK``).
Start-up, exit statuses and SIGTERM: ``integr8scode_telemetry.run_service``."""

from __future__ import annotations

import sys

from integr8scode_dlq_processor.app import create_app
from integr8scode_dlq_processor.config import InsecureConfigError, Settings
from integr8scode_telemetry import run_service


def main() -> None:
    """Read settings, serve until SIGTERM/SIGINT; uvicorn drains requests and runs the lifespan.
    A setting that is invalid or refused (no token secret outside local environments)
    ends the start with one line on stderr and status 2."""
    sys.exit(
        run_service(
            "integr8scode-dlq-processor",
            Settings,
            create_app,
            config_errors=(InsecureConfigError,),
        )
    )


if __name__ == "__main__":
    main()
