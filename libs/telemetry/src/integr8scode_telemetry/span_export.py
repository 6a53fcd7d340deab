"""How finished spans leave the process: by default records piped to an export child
(``span_pipe.py``); or, with ``INTEGR8SCODE_SPAN_EXPORT=thread`` (or a given exporter), the
OTLP gRPC exporter with our encoder (``otlp_grpc.BytesOTLPSpanExporter``) behind the SDK's
batch processor, sized by the settings.
"""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from integr8scode_telemetry.otlp_grpc import EXPORT_METHOD, BytesOTLPSpanExporter
from integr8scode_telemetry.settings import TelemetrySettings
from integr8scode_telemetry.span_pipe import PipeSpanProcessor

__all__ = [
    "EXPORT_METHOD",
    "BytesOTLPSpanExporter",
    "batch_processor",
    "exports_in_child",
    "otlp_span_exporter",
    "span_processor",
]


def otlp_span_exporter(settings: TelemetrySettings) -> SpanExporter | None:
    """The OTLP gRPC exporter the settings ask for; None without an endpoint or with tracing
    off."""
    if not settings.otlp_endpoint or not settings.tracing_enabled:
        return None
    if settings.span_encoder == "sdk":
        return OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True)
    return BytesOTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True)


def batch_processor(exporter: SpanExporter, settings: TelemetrySettings) -> BatchSpanProcessor:
    """The batch span processor with the queue, batch size and delay of the settings."""
    return BatchSpanProcessor(
        exporter,
        max_queue_size=settings.bsp_max_queue_size,
        max_export_batch_size=min(settings.bsp_max_export_batch_size, settings.bsp_max_queue_size),
        schedule_delay_millis=settings.bsp_schedule_delay_ms,
    )


def exports_in_child(settings: TelemetrySettings) -> bool:
    """True when the settings ask for the export child (and our encoder, which it runs)."""
    return settings.span_export == "process" and settings.span_encoder == "integr8scode"


def span_processor(
    settings: TelemetrySettings, exporter: SpanExporter | None = None
) -> SpanProcessor | None:
    """The processor that exports this process's spans: a batch processor around ``exporter``
    when one is given (tests, benches); else, with an endpoint and tracing on, the export
    child (``PipeSpanProcessor``) or the batch processor around the OTLP exporter, as the
    settings say; None when spans go nowhere."""
    if not settings.tracing_enabled:
        return None
    if exporter is not None:
        return batch_processor(exporter, settings)
    if not settings.otlp_endpoint:
        return None
    if exports_in_child(settings):
        return PipeSpanProcessor(
            settings.otlp_endpoint,
            max_queue_size=settings.bsp_max_queue_size,
            max_export_batch_size=settings.bsp_max_export_batch_size,
            schedule_delay_millis=settings.bsp_schedule_delay_ms,
        )
    otlp = otlp_span_exporter(settings)
    return batch_processor(otlp, settings) if otlp is not None else None
