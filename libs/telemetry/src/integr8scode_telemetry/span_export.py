"""How finished spans leave the process: by default records piped to an export child
(``span_pipe.py``); or, with ``INTEGR8SCODE_SPAN_EXPORT=thread`` (or a given exporter), the
OTLP gRPC exporter with our encoder behind the SDK's batch processor, sized by the settings.

``BytesOTLPSpanExporter`` is the SDK's ``OTLPSpanExporter`` (its channel options, headers,
compression, retries with backoff, reconnect on UNAVAILABLE, shutdown) except for the one step
that cost the most: the request is written by ``SpanEncoder`` and handed to gRPC as bytes. It
relies on two hooks of the pinned exporter (``_translate_data`` and
``_initialize_channel_and_stub``); ``tests/unit/test_span_export.py`` and the integration test
against the collector fail if an upgrade moves them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from integr8scode_telemetry.settings import TelemetrySettings
from integr8scode_telemetry.span_encoding import SpanEncoder
from integr8scode_telemetry.span_pipe import PipeSpanProcessor

# The OTLP trace service's one method (opentelemetry/proto/collector/trace/v1).
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _as_is(request: bytes) -> bytes:
    return request


class _BytesTraceStub:
    """The trace service stub, taking the request already serialised."""

    def __init__(self, channel: Any) -> None:
        self.Export: Callable[..., ExportTraceServiceResponse] = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=_as_is,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class BytesOTLPSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` whose requests are encoded by ``SpanEncoder`` (same bytes on the
    wire as far as the receiver can tell, a fraction of the CPU)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._encoder = SpanEncoder()
        super().__init__(*args, **kwargs)

    def _initialize_channel_and_stub(self) -> None:
        # Also called again by the exporter to reconnect after UNAVAILABLE.
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
        # The mixin types its client by the stub class it was given; ours takes bytes.
        self._client = cast(Any, _BytesTraceStub(self._channel))

    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
        return self._encoder.encode(data)


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
