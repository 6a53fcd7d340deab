"""start_span, set_span_attributes, and trace ids on log records."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from integr8scode_telemetry.logs import TraceContextFilter, configure_logging
from integr8scode_telemetry.spans import set_span_attributes, start_span


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


class SandboxCrashedError(RuntimeError):
    pass


def test_start_span_sets_attributes_skipping_none(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with start_span(
        "saga.step",
        {"saga.name": "execution", "saga.step": None, "sandbox.exit_code": 0},
        kind=SpanKind.CLIENT,
        tracer=tracer,
    ):
        pass

    (span,) = exporter.get_finished_spans()
    assert span.name == "saga.step"
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {"saga.name": "execution", "sandbox.exit_code": 0}
    assert span.status.status_code is StatusCode.UNSET


def test_start_span_records_the_exception_and_sets_error(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with (
        pytest.raises(SandboxCrashedError, match="oom"),
        start_span("sandbox.run", tracer=tracer),
    ):
        raise SandboxCrashedError("oom")

    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "SandboxCrashedError: oom"
    exceptions = [e for e in span.events if e.name == "exception"]
    assert len(exceptions) == 1
    attributes = exceptions[0].attributes or {}
    assert str(attributes["exception.type"]).endswith("SandboxCrashedError")
    assert attributes["exception.message"] == "oom"


def test_start_span_is_current_inside(tracer: trace.Tracer) -> None:
    with start_span("outer", tracer=tracer) as span:
        assert trace.get_current_span() is span
    assert trace.get_current_span() is not span


def test_set_span_attributes_adds_to_the_current_span(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with start_span("request", {"a": 1}, tracer=tracer):
        set_span_attributes({"execution.id": "ex-1", "user.id": None, "rate_limit.allowed": True})

    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {
        "a": 1,
        "execution.id": "ex-1",
        "rate_limit.allowed": True,
    }


def test_set_span_attributes_without_a_span_is_harmless() -> None:
    assert not trace.get_current_span().is_recording()
    set_span_attributes({"execution.id": "ex-1"})


def _record() -> logging.LogRecord:
    return logging.LogRecord("test", logging.INFO, __file__, 1, "hello", None, None)


def test_trace_context_filter_inside_a_span(tracer: trace.Tracer) -> None:
    record = _record()
    with tracer.start_as_current_span("request") as span:
        assert TraceContextFilter().filter(record) is True
        ctx = span.get_span_context()

    trace_id = record.__dict__["trace_id"]
    span_id = record.__dict__["span_id"]
    assert trace_id == format(ctx.trace_id, "032x")
    assert span_id == format(ctx.span_id, "016x")
    assert len(trace_id) == 32
    assert len(span_id) == 16
    assert int(trace_id, 16) != 0


def test_trace_context_filter_outside_a_span() -> None:
    record = _record()
    assert TraceContextFilter().filter(record) is True
    assert record.__dict__["trace_id"] == "-"
    assert record.__dict__["span_id"] == "-"


def test_trace_context_filter_formats_zero_padded_ids() -> None:
    ctx = trace.SpanContext(
        trace_id=0xABC, span_id=0x12, is_remote=False, trace_flags=trace.TraceFlags(1)
    )
    record = _record()
    with trace.use_span(trace.NonRecordingSpan(ctx)):
        TraceContextFilter().filter(record)
    assert record.__dict__["trace_id"] == "0" * 29 + "abc"
    assert record.__dict__["span_id"] == "0" * 14 + "12"


def test_configure_logging_keeps_httpx_request_urls_out_of_the_log() -> None:
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    handlers, root_level, httpx_level = root.handlers[:], root.level, httpx_log.level
    try:
        configure_logging("INFO")
        assert not httpx_log.isEnabledFor(logging.INFO)
        assert httpx_log.isEnabledFor(logging.WARNING)
        assert logging.getLogger("integr8scode").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        httpx_log.setLevel(httpx_level)
