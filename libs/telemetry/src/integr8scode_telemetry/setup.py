"""``init_telemetry``: the one call a process makes to set up tracing."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

from integr8scode_telemetry.settings import TelemetrySettings

NAMESPACE = "integr8scode"


@dataclass
class TelemetryHandle:
    """What ``init_telemetry`` built; ``shutdown`` flushes pending spans and closes exporters."""

    tracer_provider: TracerProvider

    def shutdown(self) -> None:
        """Flush and close everything the init call opened."""
        self.tracer_provider.shutdown()


def build_resource(
    settings: TelemetrySettings, service_name: str, service_version: str
) -> Resource:
    """The resource every span of this process carries."""
    return Resource.create(
        {
            "service.name": service_name,
            "service.version": service_version,
            "service.namespace": NAMESPACE,
            "service.instance.id": f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
            "deployment.environment": settings.environment,
        }
    )


def init_telemetry(
    settings: TelemetrySettings, service_name: str, service_version: str
) -> TelemetryHandle:
    """Build the tracer provider for this process and register it globally."""
    sampler = (
        ParentBased(TraceIdRatioBased(settings.sampler_ratio))
        if settings.tracing_enabled
        else ALWAYS_OFF
    )
    provider = TracerProvider(
        resource=build_resource(settings, service_name, service_version), sampler=sampler
    )
    if settings.tracing_enabled and settings.otlp_endpoint:
        # Imported here: the gRPC exporter is heavy and unused when tracing is off.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True))
        )
    trace.set_tracer_provider(provider)
    return TelemetryHandle(tracer_provider=provider)


def instrument_fastapi(app: FastAPI, handle: TelemetryHandle) -> None:
    """HTTP server spans for one app (health probes excluded: they would drown the traces)."""
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=handle.tracer_provider, excluded_urls="/health/live,/health/ready"
    )
