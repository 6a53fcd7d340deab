"""Integr8sCode telemetry: one ``init_telemetry`` call per process."""

from integr8scode_telemetry.health import HealthProbe, build_health_router
from integr8scode_telemetry.logs import configure_logging
from integr8scode_telemetry.settings import TelemetrySettings
from integr8scode_telemetry.setup import TelemetryHandle, init_telemetry, instrument_fastapi

__all__ = [
    "HealthProbe",
    "TelemetryHandle",
    "TelemetrySettings",
    "build_health_router",
    "configure_logging",
    "init_telemetry",
    "instrument_fastapi",
]
