"""``init_telemetry``: the one call a process makes to become observable."""

from __future__ import annotations

import importlib.util
import logging
import os
import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI
from opentelemetry import metrics, propagate, trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp

from integr8scode_telemetry.http_server_spans import ServerSpanDetails, edge_telemetry
from integr8scode_telemetry.inbound_trace import UntrustedTraceContextGuard
from integr8scode_telemetry.mongo_spans import MongoInstrumentation
from integr8scode_telemetry.outbound_trace import w3c_propagator
from integr8scode_telemetry.redaction import redact_request_url, redact_request_url_async
from integr8scode_telemetry.samplers import build_sampler
from integr8scode_telemetry.settings import TelemetrySettings
from integr8scode_telemetry.span_pipe import ExportStats, PipeSpanProcessor

NAMESPACE = "integr8scode"
log = logging.getLogger(__name__)


class NonRecordingTracerProvider(TracerProvider):
    """The provider when tracing is off: every tracer is the API's ``NoOpTracer``.

    The SDK's own tracer with an ``ALWAYS_OFF`` sampler would give each span a fresh span id and
    the flags ``00``, so a service with tracing off would cut the trace it sits in (the next hop
    sees an unsampled parent). A ``NoOpTracer`` span is the parent's span context itself: what
    this process publishes or calls carries the inbound ``traceparent`` unchanged, and the next
    hop continues the trace as if this one were not there."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return trace.NoOpTracer()


@dataclass
class TelemetryHandle:
    """What ``init_telemetry`` built; ``shutdown`` flushes pending spans and metrics, removes the
    instrumentation it added, and closes the exporters."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    settings: TelemetrySettings
    span_processor: SpanProcessor | None = None
    _instrumented: list[HTTPXClientInstrumentor | MongoInstrumentation] = field(
        default_factory=list
    )
    _closed: bool = False

    @property
    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer(NAMESPACE)

    def force_flush(self, timeout_ms: int = 5_000) -> bool:
        """Export everything finished so far (tests and short-lived tools)."""
        return self.tracer_provider.force_flush(timeout_ms)

    def span_export_stats(self) -> ExportStats | None:
        """What became of the spans so far when they go through the export child
        (``span_pipe.ExportStats``: exported, failed, dropped, lost, waiting); else None."""
        processor = self.span_processor
        return processor.stats() if isinstance(processor, PipeSpanProcessor) else None

    def shutdown(self) -> None:
        """Flush and close everything the init call opened; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for instrumentor in self._instrumented:
            instrumentor.uninstrument()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def build_resource(
    settings: TelemetrySettings, service_name: str, service_version: str
) -> Resource:
    """The resource every span and metric of this process carries."""
    return Resource.create(
        {
            "service.name": service_name,
            "service.version": service_version,
            "service.namespace": NAMESPACE,
            "service.instance.id": f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
            "deployment.environment": settings.environment,
            "deployment.environment.name": settings.environment,
        }
    )


def init_telemetry(
    settings: TelemetrySettings,
    service_name: str,
    service_version: str,
    *,
    set_global: bool = True,
    instrument_libraries: bool = True,
    span_exporter: SpanExporter | None = None,
) -> TelemetryHandle:
    """Set up tracing and metrics for this process.

    - W3C trace context and baggage propagation;
    - the sampler from the settings (``OTEL_SDK_DISABLED``, ratio ``0`` or ``off`` mean no spans;
      the trace context is then passed on unchanged: ``NonRecordingTracerProvider``);
    - OTLP gRPC export when an endpoint is set: by an export child process fed span records
      (``span_pipe.py``; ``INTEGR8SCODE_SPAN_EXPORT=thread``: a batch processor's thread), or
      ``span_exporter`` behind a batch processor (tests); with neither, spans are dropped after
      local processing;
    - HTTPX instrumentation and Mongo command spans (``mongo_spans.py``; call this before any
      Mongo client exists);
    - OTLP metrics, exported every ``metrics_export_interval_ms``.

    ``set_global=False`` builds a provider for one component without touching the globals
    (tests that run a producer and a consumer with separate providers in one process).
    """
    # Stable HTTP semantic conventions (http.response.status_code, url.full, server.address,
    # ...): the HTTP instrumentations read this once, so it is set before the first one is
    # created. The Mongo command spans are ours (mongo_spans.py) and always use the stable
    # database conventions.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    if set_global:
        # Withholding: outbound requests to third parties can be kept free of the context
        # (outbound_trace.py).
        propagate.set_global_textmap(w3c_propagator())
    resource = build_resource(settings, service_name, service_version)
    provider_class = TracerProvider if settings.tracing_enabled else NonRecordingTracerProvider
    tracer_provider = provider_class(resource=resource, sampler=build_sampler(settings))
    span_processor = _span_processor(settings, span_exporter)
    if span_processor is not None:
        tracer_provider.add_span_processor(span_processor)
    meter_provider = MeterProvider(resource=resource, metric_readers=_metric_readers(settings))
    handle = TelemetryHandle(tracer_provider, meter_provider, settings, span_processor)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    if instrument_libraries and settings.tracing_enabled:
        httpx_instrumentor = HTTPXClientInstrumentor()
        # Only services that make HTTP calls install httpx (a service image has just its own
        # dependencies); instrumenting it where it is absent only logs an error.
        if (
            importlib.util.find_spec("httpx") is not None
            and not httpx_instrumentor.is_instrumented_by_opentelemetry
        ):
            # Outbound URLs (webhooks) may carry tokens: spans show them redacted.
            httpx_instrumentor.instrument(
                tracer_provider=tracer_provider,
                request_hook=redact_request_url,
                async_request_hook=redact_request_url_async,
            )
            handle._instrumented.append(httpx_instrumentor)
        mongo = MongoInstrumentation()
        if not mongo.is_instrumented:
            mongo.instrument(tracer_provider.get_tracer("integr8scode_telemetry.mongo_spans"))
            handle._instrumented.append(mongo)
    log.info(
        "telemetry for %s: tracing=%s sampler=%s endpoint=%s",
        service_name,
        settings.tracing_enabled,
        settings.sampler,
        settings.otlp_endpoint or "none (spans dropped)",
    )
    return handle


def _span_processor(
    settings: TelemetrySettings, span_exporter: SpanExporter | None
) -> SpanProcessor | None:
    if not settings.tracing_enabled or (span_exporter is None and not settings.otlp_endpoint):
        return None
    # Imported here: the exporter module loads gRPC, heavy and unused when tracing is off.
    from integr8scode_telemetry.span_export import span_processor  # noqa: PLC0415

    return span_processor(settings, span_exporter)


def _metric_readers(settings: TelemetrySettings) -> list[MetricReader]:
    if not settings.otlp_endpoint or settings.sdk_disabled:
        return []
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter,
    )

    return [
        PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=settings.otlp_endpoint, insecure=True),
            export_interval_millis=settings.metrics_export_interval_ms,
        )
    ]


def instrument_fastapi(app: FastAPI, handle: TelemetryHandle) -> None:
    """HTTP server spans and metrics for one app: FastAPI's own telemetry, configured by
    ``http_server_spans.edge_telemetry`` (health probes left out), and ``ServerSpanDetails``
    inside it. Call it once, before the app serves a request.

    Inbound trace context is continued only from trusted upstreams
    (``TelemetrySettings.trace_trusted_upstreams``); any other request starts a new trace whose
    server span links to the caller's context (``inbound_trace.py``).
    """
    trusted = handle.settings.trusted_upstreams
    # FastAPI reads its telemetry settings from this dict on every request; the constructor's
    # ``telemetry`` argument fills it, but the apps are built apart from their telemetry (the
    # unit tests build them without any).
    # tests/unit/test_http_server_spans.py fails if a FastAPI upgrade moves it.
    app._telemetry.update(edge_telemetry(handle.tracer_provider, handle.meter_provider, trusted))
    app.add_middleware(ServerSpanDetails)
    if trusted.everyone:
        return
    # And before the app: whatever the telemetry's settings, the app never sees the context.
    build_stack = app.build_middleware_stack

    def build_guarded_stack() -> ASGIApp:
        return UntrustedTraceContextGuard(build_stack(), trusted)

    app.build_middleware_stack = build_guarded_stack  # type: ignore[method-assign]
