"""A propagator declaring libs/events' withholding contract, for the tests of its W3C shortcuts
(``libs/events/tests/unit/test_inject_context.py`` and ``test_extract_context.py``)."""

from __future__ import annotations

from opentelemetry.context import Context, create_key, get_value
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from integr8scode_events.tracing import WITHHOLDING_CONTRACT

WITHHELD = create_key("test.withheld")


class Declaring(TextMapPropagator):
    """A wrapper declaring libs/events' withholding contract (libs/telemetry's
    ``WithholdingPropagator`` is held to the same in the root tests): inject nothing while the
    context says so, else the inner propagator's; extract unchanged."""

    trace_context_contract = WITHHOLDING_CONTRACT

    def __init__(self, inner: TextMapPropagator) -> None:
        self.inner = inner

    def withholds(self, context: Context | None = None) -> bool:
        return bool(get_value(WITHHELD, context))

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        return self.inner.extract(carrier, context, getter)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        if not self.withholds(context):
            self.inner.inject(carrier, context, setter)

    @property
    def fields(self) -> set[str]:
        return self.inner.fields
