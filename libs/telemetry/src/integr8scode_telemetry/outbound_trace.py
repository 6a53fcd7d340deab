"""Whether an outbound request carries this process's trace context.

The HTTP client instrumentations (httpx, aiohttp) inject ``traceparent``, ``tracestate`` and
``baggage`` into every request through the global propagator. A request to a third party (a
user's webhook receiver, Slack) should not learn the platform's internal trace ids unless that
receiver is trusted. ``init_telemetry`` therefore installs ``WithholdingPropagator`` around the
W3C propagators: inside ``withheld_trace_context()`` it injects nothing, while the client span
is still recorded as usual. ``trace_context_headers()`` is the other direction: the current
context as headers, for a caller that wants to pass it on even when no instrumentation runs
(tracing off).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_WITHHELD = otel_context.create_key("integr8scode.trace_context_withheld")


# What this propagator declares to libs/events (which does not import this library): "plain
# W3C underneath (``inner``), extraction unchanged, injection empty while ``withholds``"; its
# inject/extract shortcuts then apply in the services too. Must equal libs/events'
# ``tracing.WITHHOLDING_CONTRACT`` (tests/unit/test_trace_context_contract.py).
WITHHOLDING_CONTRACT = "integr8scode.w3c-withholding/1"


class WithholdingPropagator(TextMapPropagator):
    """Delegates to ``inner``, except that it injects nothing while the context says the trace
    context is withheld (``withheld_trace_context``). Extraction is unchanged."""

    trace_context_contract = WITHHOLDING_CONTRACT

    def __init__(self, inner: TextMapPropagator) -> None:
        self._inner = inner

    @property
    def inner(self) -> TextMapPropagator:
        """The propagator this one delegates to."""
        return self._inner

    def withholds(self, context: Context | None = None) -> bool:
        """True when ``inject`` writes nothing for ``context`` (the current one when None)."""
        return bool(otel_context.get_value(_WITHHELD, context))

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        return self._inner.extract(carrier, context, getter)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        if self.withholds(context):
            return
        self._inner.inject(carrier, context, setter)

    @property
    def fields(self) -> set[str]:
        return self._inner.fields


def w3c_propagator() -> TextMapPropagator:
    """W3C trace context and baggage, withholdable: what ``init_telemetry`` installs globally."""
    return WithholdingPropagator(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )


@contextmanager
def withheld_trace_context(withhold: bool = True) -> Iterator[None]:
    """Inside, the global propagator writes no trace context into outbound requests (the
    instrumentations still record their client spans). ``withhold=False`` changes nothing (for
    callers whose target is trusted by a setting)."""
    if not withhold:
        yield
        return
    token = otel_context.attach(otel_context.set_value(_WITHHELD, True))
    try:
        yield
    finally:
        otel_context.detach(token)


def trace_context_headers() -> dict[str, str]:
    """The current trace context (and baggage) as W3C headers; empty when there is none.
    Works without a recording SDK: a context extracted from a message is passed on as it is."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=otel_context.set_value(_WITHHELD, False))
    return carrier


__all__ = [
    "WITHHOLDING_CONTRACT",
    "WithholdingPropagator",
    "trace_context_headers",
    "w3c_propagator",
    "withheld_trace_context",
]
