"""Integr8sCode telemetry: one ``init_telemetry`` call per process, and the few helpers that pay.

The face is lazy (PEP 562): a name is imported from its module on first use, so importing a
light module (``integr8scode_telemetry.attributes``, the attribute names domain code uses) loads
neither FastAPI nor the OpenTelemetry SDK. The root ``tests/unit/test_light_imports.py`` holds it
to that.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integr8scode_telemetry import attributes
    from integr8scode_telemetry.background import resume_trace, untraced, untraced_task
    from integr8scode_telemetry.entrypoint import EXIT_CONFIG, run_service
    from integr8scode_telemetry.health import HealthProbe, build_health_router, probe_live
    from integr8scode_telemetry.heap import HeapSettings
    from integr8scode_telemetry.http_errors import install_request_error_handlers
    from integr8scode_telemetry.lifespan import ResourceStack, service_lifespan
    from integr8scode_telemetry.logs import configure_logging
    from integr8scode_telemetry.samplers import AdaptiveSampler, build_sampler
    from integr8scode_telemetry.settings import TelemetrySettings
    from integr8scode_telemetry.setup import TelemetryHandle, init_telemetry, instrument_fastapi
    from integr8scode_telemetry.spans import set_span_attributes, start_span
    from integr8scode_telemetry.supervisor import Supervisor

# Each public name and the module it lives in (``attributes`` is the module itself).
_EXPORTS = {
    "EXIT_CONFIG": "entrypoint",
    "AdaptiveSampler": "samplers",
    "HealthProbe": "health",
    "HeapSettings": "heap",
    "ResourceStack": "lifespan",
    "Supervisor": "supervisor",
    "TelemetryHandle": "setup",
    "TelemetrySettings": "settings",
    "attributes": "",
    "build_health_router": "health",
    "build_sampler": "samplers",
    "configure_logging": "logs",
    "init_telemetry": "setup",
    "install_request_error_handlers": "http_errors",
    "instrument_fastapi": "setup",
    "probe_live": "health",
    "resume_trace": "background",
    "run_service": "entrypoint",
    "service_lifespan": "lifespan",
    "set_span_attributes": "spans",
    "start_span": "spans",
    "untraced": "background",
    "untraced_task": "background",
}

__all__ = [
    "EXIT_CONFIG",
    "AdaptiveSampler",
    "HealthProbe",
    "HeapSettings",
    "ResourceStack",
    "Supervisor",
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


# Hidden from mypy: it checks every name against the TYPE_CHECKING imports above (a module
# ``__getattr__`` would make any misspelt name an ``Any``).
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        if not module:
            return importlib.import_module(f"{__name__}.{name}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # looked up once
        return value

    def __dir__() -> list[str]:
        return sorted([*globals(), *_EXPORTS])
