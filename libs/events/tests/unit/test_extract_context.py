"""extract_context reads what the configured propagator would: by hand for plain W3C (alone, with
W3C baggage, or under a wrapper that declares the withholding contract), through the
propagator itself for anything else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from tests.withholding_stand_in import Declaring

from integr8scode_events.trace_context import extract_w3c
from integr8scode_events.tracing import _w3c_plan, extract_context

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"

CARRIERS: list[dict[str, str]] = [
    {},
    {"event_type": "x"},
    {"traceparent": f"00-{TRACE}-{SPAN}-01"},
    {"traceparent": f"00-{TRACE}-{SPAN}-00"},
    {"traceparent": f"00-{TRACE}-{SPAN}-09"},  # random trace id flag with sampled
    {"traceparent": f"  00-{TRACE}-{SPAN}-01\t"},  # surrounding blanks are allowed
    {"traceparent": f"00-{TRACE}-{SPAN}-01-extra"},  # version 00 takes no more fields
    {"traceparent": f"01-{TRACE}-{SPAN}-01-extra"},  # a later version may have them
    {"traceparent": f"ff-{TRACE}-{SPAN}-01"},  # version ff is invalid
    {"traceparent": f"00-{TRACE.upper()}-{SPAN}-01"},  # upper case is not W3C
    {"traceparent": f"00-{'0' * 32}-{SPAN}-01"},
    {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},
    {"traceparent": f"00-{TRACE}-{SPAN}"},
    {"traceparent": ""},
    {"traceparent": "garbage"},
    {"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "congo=t61rcWkgMzE,rojo=00f067"},
    {"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "not a tracestate"},
    {"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "k=" + "v" * 600},  # too long
    {"traceparent": f"00-{TRACE}-{SPAN}-01", "baggage": "user=u-1,tier=gold"},
    {"baggage": "only=baggage"},
    {"baggage": ""},
]


def _seen(context: Context) -> tuple[object, ...]:
    """What a consumer reads from a context: the remote span context, baggage, and which keys
    are set (a context's values are compared by content, not identity)."""
    span = trace.get_current_span(context)
    return (span.get_span_context(), dict(baggage.get_all(context)), sorted(context))


@pytest.fixture
def global_propagator() -> Iterator[None]:
    before = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(before)


W3C_AND_BAGGAGE = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


@pytest.mark.parametrize(
    ("propagator", "shortcut"),
    [
        (TraceContextTextMapPropagator(), True),
        (CompositePropagator([TraceContextTextMapPropagator()]), True),
        (W3C_AND_BAGGAGE, True),
        (Declaring(W3C_AND_BAGGAGE), True),
        (Declaring(TraceContextTextMapPropagator()), True),
        (CompositePropagator([W3CBaggagePropagator(), TraceContextTextMapPropagator()]), False),
        (Declaring(W3CBaggagePropagator()), False),  # the contract, but not W3C underneath
        (W3CBaggagePropagator(), False),
    ],
    ids=[
        "w3c",
        "w3c-composite",
        "w3c+baggage",
        "withholding-w3c+baggage",
        "withholding-w3c",
        "baggage+w3c",
        "withholding-baggage",
        "baggage",
    ],
)
@pytest.mark.usefixtures("global_propagator")
def test_the_context_is_the_propagators_own(propagator: TextMapPropagator, shortcut: bool) -> None:
    propagate.set_global_textmap(propagator)
    assert (_w3c_plan(propagator) is not None) is shortcut
    for carrier in CARRIERS:
        assert _seen(extract_context(carrier)) == _seen(propagator.extract(carrier)), carrier


@pytest.mark.usefixtures("global_propagator")
def test_a_sampled_parent_is_read_as_remote() -> None:
    propagate.set_global_textmap(W3C_AND_BAGGAGE)

    context = extract_context({"traceparent": f"00-{TRACE}-{SPAN}-01"})

    span_context = trace.get_current_span(context).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (int(TRACE, 16), int(SPAN, 16))
    assert span_context.is_remote
    assert span_context.trace_flags.sampled


@pytest.mark.parametrize("carrier", CARRIERS)
def test_extract_w3c_is_the_w3c_propagators_extract(carrier: dict[str, str]) -> None:
    # What StoredTraceContext parses with, on an empty context and on one that has a value.
    w3c = TraceContextTextMapPropagator()
    for start in (Context(), baggage.set_baggage("k", "v", Context())):
        assert _seen(extract_w3c(carrier, start)) == _seen(w3c.extract(carrier, start)), carrier
