"""StoredTraceContext: a stored W3C pair captured, kept as it travelled, and read back through
the W3C propagator as a context to continue, a span context to link to, and ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.span import TraceState

from integr8scode_events import StoredTraceContext

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


@pytest.fixture
def tracer() -> trace.Tracer:
    return TracerProvider().get_tracer("test")


def test_a_valid_pair_gives_the_remote_span_its_ids_and_a_context_to_continue() -> None:
    stored = StoredTraceContext(TRACEPARENT, "vendor=x,other=y")

    found = stored.span_context
    assert found is not None
    assert found.is_remote
    assert (found.trace_id, found.span_id) == (int(TRACE_ID, 16), int(SPAN_ID, 16))
    assert found.trace_flags.sampled
    assert dict(found.trace_state) == {"vendor": "x", "other": "y"}
    assert (stored.trace_id, stored.span_id) == (TRACE_ID, SPAN_ID)
    assert trace.get_current_span(stored.context()).get_span_context() == found


def test_an_unsampled_context_stays_unsampled() -> None:
    found = StoredTraceContext(f"00-{TRACE_ID}-{SPAN_ID}-00").span_context
    assert found is not None
    assert not found.trace_flags.sampled


@pytest.mark.parametrize("traceparent", [None, ""])
def test_a_missing_context_gives_nothing(traceparent: str | None) -> None:
    stored = StoredTraceContext(traceparent, "vendor=x")
    assert stored.span_context is None
    assert stored.trace_id is None
    assert stored.span_id is None
    assert stored.carrier() == {}  # a tracestate alone is not sent
    assert not trace.get_current_span(stored.context()).get_span_context().is_valid


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        "00-not-a-context-01",
        f"00-{TRACE_ID}-{SPAN_ID}",  # no flags
        f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01",  # short trace id
        f"00-{TRACE_ID.upper()}-{SPAN_ID}-01",  # W3C ids are lowercase
        f"ff-{TRACE_ID}-{SPAN_ID}-01",  # a forbidden version
        f"00-{TRACE_ID}-{SPAN_ID}-01-extra",  # version 00 has exactly four fields
        f"00-{'0' * 32}-{SPAN_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero span id
    ],
)
def test_a_malformed_or_zero_context_gives_nothing_but_is_kept(traceparent: str) -> None:
    stored = StoredTraceContext(traceparent, "vendor=x")
    assert stored.span_context is None
    assert (stored.trace_id, stored.span_id) == (None, None)
    assert not trace.get_current_span(stored.context()).get_span_context().is_valid
    # What was stored is not rewritten: a document read and written back keeps its fields.
    assert stored.fields() == {"traceparent": traceparent, "tracestate": "vendor=x"}


def test_surrounding_whitespace_is_tolerated_as_the_propagator_does() -> None:
    assert StoredTraceContext(f" {TRACEPARENT}\t").trace_id == TRACE_ID


def test_the_tracestate_is_kept_as_stored_and_carried_with_the_traceparent() -> None:
    stored = StoredTraceContext(TRACEPARENT, "vendor=x")
    assert stored.fields() == {"traceparent": TRACEPARENT, "tracestate": "vendor=x"}
    assert stored.carrier() == {"traceparent": TRACEPARENT, "tracestate": "vendor=x"}
    assert StoredTraceContext(TRACEPARENT).carrier() == {"traceparent": TRACEPARENT}
    assert StoredTraceContext().fields() == {"traceparent": None, "tracestate": None}


def test_a_malformed_tracestate_does_not_lose_the_span() -> None:
    stored = StoredTraceContext(TRACEPARENT, "not a tracestate")
    assert stored.span_context is not None
    assert dict(stored.span_context.trace_state) == {}
    assert stored.tracestate == "not a tracestate"


def test_from_headers_reads_the_two_headers_and_nothing_else() -> None:
    headers = {
        "traceparent": TRACEPARENT,
        "tracestate": "vendor=x",
        "baggage": "tenant=a",
        "event_type": "execution.requested",
    }
    assert StoredTraceContext.from_headers(headers) == StoredTraceContext(TRACEPARENT, "vendor=x")
    # An empty header (Kafka's None value) counts as absent.
    assert StoredTraceContext.from_headers({"traceparent": "", "tracestate": ""}) == (
        StoredTraceContext()
    )


def test_from_document_reads_the_two_fields_leniently() -> None:
    doc = {"_id": "x", "traceparent": TRACEPARENT, "tracestate": None}
    assert StoredTraceContext.from_document(doc) == StoredTraceContext(TRACEPARENT)
    assert StoredTraceContext.from_document({}) == StoredTraceContext()
    # A document written by hand with the wrong types: nothing usable, and no error.
    assert StoredTraceContext.from_document({"traceparent": 42, "tracestate": ["x"]}) == (
        StoredTraceContext()
    )


def test_capture_takes_the_current_span(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("kafka.consume") as span:
        stored = StoredTraceContext.capture()
    expected = span.get_span_context()
    assert stored.trace_id == trace.format_trace_id(expected.trace_id)
    assert stored.span_id == trace.format_span_id(expected.span_id)
    assert stored.tracestate is None


def test_capture_of_a_given_context_and_of_nothing() -> None:
    remote = SpanContext(
        int(TRACE_ID, 16),
        int(SPAN_ID, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "x")]),
    )
    given = trace.set_span_in_context(NonRecordingSpan(remote))
    assert StoredTraceContext.capture(given) == StoredTraceContext(TRACEPARENT, "vendor=x")
    assert StoredTraceContext.capture() == StoredTraceContext()  # no current span


@pytest.fixture
def baggage_everywhere() -> Iterator[None]:
    """A process whose global propagator also sends baggage (and would extract it)."""
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([W3CBaggagePropagator()]))
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


@pytest.mark.usefixtures("baggage_everywhere")
def test_the_global_propagator_changes_nothing_of_what_is_stored(tracer: trace.Tracer) -> None:
    token = otel_context.attach(baggage.set_baggage("tenant", "a"))
    try:
        with tracer.start_as_current_span("work") as span:
            stored = StoredTraceContext.capture()
            continued = StoredTraceContext(stored.traceparent, stored.tracestate).context()
    finally:
        otel_context.detach(token)
    assert stored.trace_id == trace.format_trace_id(span.get_span_context().trace_id)
    assert set(stored.carrier()) == {"traceparent"}
    # The continued context is built on an empty one: no baggage of the capturing scope.
    assert baggage.get_all(continued) == {}


def test_round_trip_capture_fields_context_span_context(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("origin") as origin:
        stored = StoredTraceContext.capture()
    document = {"_id": "saga-1", **stored.fields()}
    loaded = StoredTraceContext.from_document(document)
    assert loaded == stored
    with tracer.start_as_current_span("resumed", context=loaded.context()) as resumed:
        pass
    assert isinstance(resumed, ReadableSpan)
    assert loaded.span_context is not None
    assert loaded.span_context.trace_id == origin.get_span_context().trace_id
    assert loaded.span_context.span_id == origin.get_span_context().span_id
    assert resumed.parent is not None
    assert resumed.parent.span_id == origin.get_span_context().span_id
    assert resumed.get_span_context().trace_id == origin.get_span_context().trace_id


def test_it_is_immutable_hashable_and_parses_once() -> None:
    stored = StoredTraceContext(TRACEPARENT)
    with pytest.raises(AttributeError):
        stored.traceparent = "other"  # type: ignore[misc]
    assert hash(stored) == hash(StoredTraceContext(TRACEPARENT))
    assert stored.span_context is stored.span_context
    assert stored.context() is stored.context()
