"""Entry point: ``python -m integr8scode_notifier`` (or the ``integr8scode-notifier`` script).

``integr8scode-notifier healthcheck`` probes the running server (the image's ``HEALTHCHECK``).
Start-up, exit statuses and SIGTERM: ``integr8scode_telemetry.run_service``."""

from __future__ import annotations

import sys

from integr8scode_notifier.app import create_app
from integr8scode_notifier.config import Settings
from integr8scode_secrets import KeyRingError
from integr8scode_telemetry import run_service


def main() -> None:
    """Read settings, serve until SIGTERM/SIGINT; uvicorn drains requests and runs the lifespan.
    A setting that is invalid or refused (no key ring outside local environments) ends
    the start with one line on stderr and status 2."""
    sys.exit(
        run_service(
            "integr8scode-notifier",
            Settings,
            create_app,
            config_errors=(KeyRingError,),
        )
    )


if __name__ == "__main__":
    main()
