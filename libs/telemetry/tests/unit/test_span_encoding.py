"""Our OTLP encoder writes the message the SDK's encoder builds, whatever the spans hold."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import AttributeValue

from integr8scode_telemetry.span_encoding import SpanEncoder

REMOTE = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "opaque"), ("other", "x-1")]),
)


@pytest.fixture
def exported() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "unit", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _decoded(encoder: SpanEncoder, spans: tuple[ReadableSpan, ...]) -> ExportTraceServiceRequest:
    request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(encoder.encode(spans))
    return request


def _varied_spans(provider: TracerProvider) -> None:
    """Spans with every shape the encoder handles: kinds, remote and local parents, trace state,
    attribute types, events, links, statuses, two scopes."""
    tracer = provider.get_tracer("integr8scode_events", "1.0", schema_url="https://schema/1")
    other = provider.get_tracer("other")
    remote_parent = trace.set_span_in_context(trace.NonRecordingSpan(REMOTE))
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "kafka",
        "server.port": 9092,
        "negative": -5,
        "big": 2**62,
        "ratio": 0.25,
        "flag": True,
        "off": False,
        "one": 1,  # equal to True as a dict key: must not share its cached encoding
        "names": ("a", "b"),
        "numbers": [1, 2, 3],
        "unicode": "déjà vu ✓",
        "long": "x" * 300,
    }
    for i, kind in enumerate(SpanKind):
        with tracer.start_as_current_span(
            f"publish topic-{i % 2}",
            kind=kind,
            context=remote_parent if i % 2 else None,
            # One key, values equal as dict keys (1 == True == 1.0), encoded apart.
            attributes={**attributes, "messaging.kafka.offset": i, "same": [1, True, 1.0][i % 3]},
            links=[Link(REMOTE, {"reason": "original"})] if i % 2 else [],
        ) as span:
            span.add_event("retry", {"attempt": i, "delay_s": 0.5})
            with other.start_as_current_span("child") as child:
                child.set_status(Status(StatusCode.OK))
            if i == 0:
                span.set_status(Status(StatusCode.ERROR, "broker refused the message"))
    local = tracer.start_span("linked locally", links=[Link(span.get_span_context())])
    local.end()
    tracer.start_span("no attributes").end()


def test_the_request_is_the_one_the_sdk_builds(
    exported: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = exported
    _varied_spans(provider)
    spans = exporter.get_finished_spans()
    assert len(spans) == 12

    ours = _decoded(SpanEncoder(), spans)

    assert ours == encode_spans(spans)
    assert len(ours.resource_spans) == 1
    assert [s.scope.name for s in ours.resource_spans[0].scope_spans] == [
        "other",
        "integr8scode_events",
    ]


def test_cached_pairs_and_names_give_the_same_bytes_again(
    exported: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = exported
    _varied_spans(provider)
    spans = exporter.get_finished_spans()
    encoder = SpanEncoder(max_cached_pairs=8)  # overflows: the caches start over meanwhile

    first = encoder.encode(spans)

    assert encoder.encode(spans) == first
    assert _decoded(encoder, spans) == encode_spans(spans)


def test_spans_of_two_resources_are_grouped_apart() -> None:
    exporters = []
    for name in ("api", "coordinator"):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        provider.get_tracer("t").start_span(f"{name} work").end()
        provider.get_tracer("t").start_span(f"{name} more").end()
        exporters.append(exporter)
    api, coordinator = (e.get_finished_spans() for e in exporters)
    spans = (api[0], coordinator[0], api[1], coordinator[1])

    ours = _decoded(SpanEncoder(), spans)

    assert ours == encode_spans(spans)
    assert [len(r.scope_spans[0].spans) for r in ours.resource_spans] == [2, 2]


def test_an_unencodable_attribute_value_is_an_error() -> None:
    with pytest.raises(TypeError, match="invalid attribute value"):
        SpanEncoder()._attributes(b"\x4a", {"bad": object()})
