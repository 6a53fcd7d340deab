"""untraced / untraced_task / resume_trace: background passes make no spans through the client
instrumentations, and work for one execution continues that execution's stored trace."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integr8scode_telemetry.background import resume_trace, untraced, untraced_task


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


def _client_call(tracer: trace.Tracer, name: str) -> None:
    """What PyMongo's and HTTPX's instrumentations do per command: a span unless suppressed."""
    if is_instrumentation_enabled():
        with tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT):
            pass


def _stored_context(tracer: trace.Tracer) -> trace.SpanContext:
    """A span context as a stored one reads back: remote, with its tracestate."""
    with tracer.start_as_current_span("kafka.consume") as span:
        ended = span.get_span_context()
    return trace.SpanContext(
        ended.trace_id,
        ended.span_id,
        is_remote=True,
        trace_flags=ended.trace_flags,
        trace_state=trace.TraceState([("vendor", "1")]),
    )


def test_untraced_suppresses_client_spans_and_restores_them_after(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with untraced():
        assert not is_instrumentation_enabled()
        _client_call(tracer, "find slots")
    assert is_instrumentation_enabled()
    _client_call(tracer, "find sagas")
    assert [s.name for s in exporter.get_finished_spans()] == ["find sagas"]


async def test_untraced_task_runs_the_whole_pass_suppressed(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    @untraced_task
    async def poll(label: str) -> str:
        _client_call(tracer, "find replay_sessions")
        return label

    assert await poll("done") == "done"
    assert poll.__name__ == "poll"
    assert exporter.get_finished_spans() == ()
    assert is_instrumentation_enabled()


def test_resume_trace_parents_the_work_on_the_stored_context_even_inside_a_pass(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    stored = _stored_context(tracer)
    exporter.clear()
    with untraced():
        with resume_trace(stored) as resumed:
            assert resumed
            with tracer.start_as_current_span("saga.recover"):
                _client_call(tracer, "update sagas")
            assert trace.get_current_span().get_span_context().trace_state.get("vendor") == "1"
        assert not is_instrumentation_enabled()  # back to the pass's suppression after
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    assert set(by_name) == {"saga.recover", "update sagas"}
    recover = by_name["saga.recover"]
    assert recover.context is not None
    assert recover.parent is not None
    assert recover.context.trace_id == stored.trace_id
    assert recover.parent.span_id == stored.span_id
    update = by_name["update sagas"]
    assert update.parent is not None
    assert update.parent.span_id == recover.context.span_id


@pytest.mark.parametrize("parent", [None, trace.INVALID_SPAN_CONTEXT])
def test_resume_trace_without_a_usable_context_stays_untraced(
    tracer: trace.Tracer, exporter: InMemorySpanExporter, parent: trace.SpanContext | None
) -> None:
    with resume_trace(parent) as resumed:
        assert not resumed
        _client_call(tracer, "insert saga_outbox")
    assert exporter.get_finished_spans() == ()
    assert is_instrumentation_enabled()


def test_resume_trace_inherits_nothing_of_the_caller_but_the_stored_span(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    stored = _stored_context(tracer)
    token = context.attach(baggage.set_baggage("tenant", "the-pass"))
    try:
        with tracer.start_as_current_span("the pass's own"), resume_trace(stored):
            current = trace.get_current_span().get_span_context()
            assert (current.trace_id, current.span_id) == (stored.trace_id, stored.span_id)
            assert baggage.get_all() == {}
    finally:
        context.detach(token)
