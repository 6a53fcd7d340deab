"""libs/telemetry's withholding propagator and libs/events' W3C shortcuts agree (the two
libraries don't import each other: the contract is a declared string and two members).

With the services' global propagator (``w3c_propagator()``) the events library injects and
extracts by hand, and what it writes and reads is what the propagator itself would, withheld
or not: the edge rules (outbound context withheld for third parties) hold on the fast path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, TraceFlags, TraceState

from integr8scode_events import tracing
from integr8scode_telemetry.outbound_trace import (
    WITHHOLDING_CONTRACT,
    WithholdingPropagator,
    w3c_propagator,
    withheld_trace_context,
)

SAMPLED = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("congo", "t61rcWkgMzE")]),
)


@pytest.fixture
def services_propagator() -> Iterator[WithholdingPropagator]:
    before = propagate.get_global_textmap()
    propagator = w3c_propagator()
    assert isinstance(propagator, WithholdingPropagator)
    propagate.set_global_textmap(propagator)
    yield propagator
    propagate.set_global_textmap(before)


def test_the_contract_strings_agree() -> None:
    assert WITHHOLDING_CONTRACT == tracing.WITHHOLDING_CONTRACT


def test_the_services_propagator_takes_the_shortcut(
    services_propagator: WithholdingPropagator,
) -> None:
    plan = tracing._w3c_plan(services_propagator)

    assert plan is not None
    assert plan.withholding is services_propagator


def _current() -> Context:
    context = trace.set_span_in_context(trace.NonRecordingSpan(SAMPLED))
    return baggage.set_baggage("user", "u-1", context)


def test_inject_writes_what_the_propagator_writes_and_withholds_alike(
    services_propagator: WithholdingPropagator,
) -> None:
    for withheld in (False, True):
        with withheld_trace_context(withheld):
            expected: dict[str, str] = {}
            services_propagator.inject(expected)
            given: dict[str, str] = {}
            services_propagator.inject(given, context=_current())
            ours: dict[str, str] = {}
            tracing.inject_context(ours, _current())

        assert ours == given
        assert bool(ours) is not withheld
    # The current context's withholding counts when no context is given, as for the propagator.
    with withheld_trace_context(), trace.use_span(trace.NonRecordingSpan(SAMPLED)):
        carrier: dict[str, str] = {}
        tracing.inject_context(carrier)
    assert carrier == {}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"},
        {
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "congo=t61rcWkgMzE",
            "baggage": "user=u-1",
        },
        {"traceparent": "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    ],
)
def test_extract_reads_what_the_propagator_reads(
    services_propagator: WithholdingPropagator, headers: dict[str, str]
) -> None:
    ours = tracing.extract_context(headers)
    theirs = services_propagator.extract(headers)

    assert trace.get_current_span(ours).get_span_context() == (
        trace.get_current_span(theirs).get_span_context()
    )
    assert dict(baggage.get_all(ours)) == dict(baggage.get_all(theirs))
