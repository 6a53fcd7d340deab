"""Integr8sCode telemetry: one ``init_telemetry`` call per process, and the few helpers that pay."""

from integr8scode_telemetry import attributes
from integr8scode_telemetry.background import resume_trace, untraced, untraced_task
from integr8scode_telemetry.entrypoint import EXIT_CONFIG, run_service
from integr8scode_telemetry.health import HealthProbe, build_health_router, probe_live
from integr8scode_telemetry.http_errors import install_request_error_handlers
from integr8scode_telemetry.lifespan import ResourceStack, service_lifespan
from integr8scode_telemetry.logs import configure_logging
from integr8scode_telemetry.samplers import AdaptiveSampler, build_sampler
from integr8scode_telemetry.settings import TelemetrySettings
from integr8scode_telemetry.setup import TelemetryHandle, init_telemetry, instrument_fastapi
from integr8scode_telemetry.spans import set_span_attributes, start_span

__all__ = [
    "EXIT_CONFIG",
    "AdaptiveSampler",
    "HealthProbe",
    "ResourceStack",
    "TelemetryHandle",
    "TelemetrySettings",
    "attributes",
    "build_health_router",
    "build_sampler",
    "configure_logging",
    "init_telemetry",
    "install_request_error_handlers",
    "instrument_fastapi",
    "probe_live",
    "resume_trace",
    "run_service",
    "service_lifespan",
    "set_span_attributes",
    "start_span",
    "untraced",
    "untraced_task",
]
