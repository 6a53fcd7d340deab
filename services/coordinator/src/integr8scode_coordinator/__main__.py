"""Entry point: ``python -m integr8scode_coordinator`` (or the ``integr8scode-coordinator``
script).
"""

from __future__ import annotations

import uvicorn

from integr8scode_coordinator.app import create_app
from integr8scode_coordinator.config import Settings
from integr8scode_telemetry import configure_logging


def main() -> None:
    """Read settings, serve until SIGTERM/SIGINT; uvicorn drains requests and runs the lifespan."""
    settings = Settings()
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
