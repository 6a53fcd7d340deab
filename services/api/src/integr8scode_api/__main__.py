"""Entry point: ``python -m integr8scode_api`` (or the ``integr8scode-api`` script).

``integr8scode-api healthcheck`` probes the running server (the image's ``HEALTHCHECK``);
``integr8scode-api rotate-secrets`` re-seals every stored credential under the current key and
exits (1 if any couldn't be). Start-up, exit statuses and SIGTERM:
``integr8scode_telemetry.run_service``."""

from __future__ import annotations

import asyncio
import sys

from integr8scode_api.app import create_app
from integr8scode_api.config import InsecureConfigError, Settings
from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.secrets_rotation import describe, rotate_secrets
from integr8scode_secrets import KeyRingError
from integr8scode_telemetry import EXIT_CONFIG, run_service


def main() -> None:
    """Read settings, serve until SIGTERM/SIGINT; uvicorn drains requests and runs the lifespan.
    A setting that is invalid or refused (no token secret, admin password or key ring outside
    local environments) ends the start with one line on stderr and status 2."""
    sys.exit(
        run_service(
            "integr8scode-api",
            Settings,
            create_app,
            config_errors=(InsecureConfigError, KeyRingError),
            commands={"rotate-secrets": _rotate},
        )
    )


def _rotate(settings: Settings) -> int:
    try:
        report = asyncio.run(rotate_secrets(settings))
    except (KeyRingError, DependencyUnavailableError) as exc:
        print(f"rotate-secrets: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for line in describe(report):
        print(line)
    return 1 if report.failed else 0


if __name__ == "__main__":
    main()
