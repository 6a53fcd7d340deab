"""libs/events' lean spans through libs/telemetry's exporters: the OTLP request our encoder
writes for them, and the one the SDK's encoder builds, are those of the same spans made by the
SDK's tracer (times aside). Here because it takes both libraries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from integr8scode_spans import lean as lean_spans
from integr8scode_telemetry.span_encoding import SpanEncoder

REMOTE = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "opaque")]),
)


class Counting(IdGenerator):
    def __init__(self) -> None:
        self._next = 0

    def generate_span_id(self) -> int:
        self._next += 1
        return self._next

    def generate_trace_id(self) -> int:
        self._next += 1
        return self._next << 64


def _spans(start: Callable[..., trace.Span]) -> tuple[ReadableSpan, ...]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "unit"}), id_generator=Counting()
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("integr8scode_events", "1.0")
    remote = trace.set_span_in_context(NonRecordingSpan(REMOTE))
    consume = start(
        tracer,
        "kafka.consume",
        kind=SpanKind.CONSUMER,
        context=remote,
        attributes={"messaging.system": "kafka", "messaging.kafka.offset": 7, "tags": ["a"]},
        links=[Link(REMOTE, {"integr8scode.link.reason": "x-dlq-producer"})],
    )
    consume.set_attributes({"event.id": "e-1", "ratio": 0.25, "ok": True})
    consume.add_event("retry", {"attempt": 1})
    with trace.use_span(consume, end_on_exit=False):
        publish = start(tracer, "publish t", kind=SpanKind.PRODUCER, attributes={"k": "v"})
        publish.set_status(Status(StatusCode.ERROR, "refused"))
        publish.end()
    consume.set_status(Status(StatusCode.OK))
    consume.end()
    spans = exporter.get_finished_spans()
    provider.shutdown()
    return spans


def _sdk(tracer: trace.Tracer, name: str, **kwargs: Any) -> trace.Span:
    return tracer.start_span(name, **kwargs)


def _lean(tracer: trace.Tracer, name: str, **kwargs: Any) -> trace.Span:
    return lean_spans.start_span(tracer, name, **kwargs)


def _untimed(request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.start_time_unix_nano = span.end_time_unix_nano = 0
                for event in span.events:
                    event.time_unix_nano = 0
    return request


@pytest.mark.parametrize("encoder", ["ours", "sdk"])
def test_lean_spans_encode_as_the_sdks_spans(encoder: str) -> None:
    def encoded(spans: tuple[ReadableSpan, ...]) -> ExportTraceServiceRequest:
        if encoder == "sdk":
            return _untimed(encode_spans(spans))
        return _untimed(ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans)))

    lean = _spans(_lean)
    assert all(isinstance(span, lean_spans.LeanSpan) for span in lean)
    ours = encoded(lean)
    assert ours == encoded(_spans(_sdk))
    [resource_spans] = ours.resource_spans
    [scope_spans] = resource_spans.scope_spans
    assert [span.name for span in scope_spans.spans] == ["publish t", "kafka.consume"]
    assert len(scope_spans.spans[1].attributes) == 6


def test_our_encoder_and_the_sdks_agree_on_lean_spans() -> None:
    lean = _spans(_lean)
    ours = ExportTraceServiceRequest.FromString(SpanEncoder().encode(lean))
    assert ours == encode_spans(lean)
