"""inject_context writes what the configured propagator would: by hand for plain W3C (alone or
with W3C baggage), through the propagator itself for anything else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, set_value
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Setter,
    TextMapPropagator,
    default_setter,
)
from opentelemetry.trace import SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from tests.withholding_stand_in import WITHHELD, Declaring

from integr8scode_events.tracing import _w3c_plan, inject_context


class Renaming(CompositePropagator):
    """A propagator that is not plain W3C (a subclass, as a service's wrapper would be)."""

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        setter.set(carrier, "x-custom", "yes")
        super().inject(carrier, context, setter)


def _contexts() -> list[Context]:
    def with_span(span_context: SpanContext, base: Context | None = None) -> Context:
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context), base)

    sampled = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    unsampled = SpanContext(0x1, 0x2, is_remote=False, trace_flags=TraceFlags(0))
    with_state = SpanContext(
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF,
        0xFFFFFFFFFFFFFFFF,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")]),
    )
    return [
        with_span(sampled),
        with_span(unsampled),
        with_span(with_state),
        with_span(sampled, baggage.set_baggage("user", "u-1")),
        baggage.set_baggage("only", "baggage"),  # no span: no traceparent, baggage still sent
        Context(),  # nothing at all
        set_value(WITHHELD, True, with_span(sampled, baggage.set_baggage("user", "u-1"))),
    ]


@pytest.fixture
def global_propagator() -> Iterator[None]:
    before = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(before)


@pytest.mark.parametrize(
    "propagator",
    [
        TraceContextTextMapPropagator(),
        CompositePropagator([TraceContextTextMapPropagator()]),
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]),
        CompositePropagator([W3CBaggagePropagator(), TraceContextTextMapPropagator()]),
        Renaming([TraceContextTextMapPropagator(), W3CBaggagePropagator()]),
        Declaring(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])),
        Declaring(Renaming([TraceContextTextMapPropagator()])),
    ],
    ids=[
        "w3c",
        "w3c-composite",
        "w3c+baggage",
        "baggage+w3c",
        "a-wrapper",
        "withholding-w3c+baggage",
        "withholding-a-wrapper",
    ],
)
@pytest.mark.usefixtures("global_propagator")
def test_the_carrier_is_the_propagators_own(propagator: TextMapPropagator) -> None:
    propagate.set_global_textmap(propagator)
    for context in _contexts():
        expected: dict[str, str] = {"event_type": "x"}
        propagator.inject(expected, context=context)
        carrier = {"event_type": "x"}

        inject_context(carrier, context)

        assert carrier == expected


@pytest.mark.usefixtures("global_propagator")
def test_the_current_span_is_injected_when_no_context_is_given() -> None:
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    span_context = SpanContext(0xAB, 0xCD, is_remote=False, trace_flags=TraceFlags(1))
    carrier: dict[str, str] = {}

    with trace.use_span(trace.NonRecordingSpan(span_context)):
        inject_context(carrier)

    assert carrier == {"traceparent": f"00-{0xAB:032x}-{0xCD:016x}-01"}


@pytest.mark.usefixtures("global_propagator")
def test_a_changed_global_propagator_is_honoured() -> None:
    context = _contexts()[0]
    propagate.set_global_textmap(TraceContextTextMapPropagator())
    first: dict[str, str] = {}
    inject_context(first, context)
    propagate.set_global_textmap(Renaming([TraceContextTextMapPropagator()]))
    second: dict[str, str] = {}

    inject_context(second, context)

    assert "x-custom" not in first
    assert second == {**first, "x-custom": "yes"}


@pytest.mark.usefixtures("global_propagator")
def test_a_declared_wrapper_of_plain_w3c_takes_the_shortcut_and_withholds() -> None:
    wrapper = Declaring(CompositePropagator([TraceContextTextMapPropagator()]))
    propagate.set_global_textmap(wrapper)
    context = _contexts()[0]
    sent: dict[str, str] = {}
    withheld: dict[str, str] = {}

    inject_context(sent, context)
    inject_context(withheld, set_value(WITHHELD, True, context))

    assert _w3c_plan(wrapper) is not None
    assert sent == {
        "traceparent": f"00-{0x0AF7651916CD43DD8448EB211C80319C:032x}-{0xF067AA0BA902B7:016x}-01"
    }
    assert withheld == {}
