"""Span names, attribute names and context propagation for messages (DESIGN.md §5).

Only the OpenTelemetry API is used here: the process's telemetry setup decides where spans go.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from integr8scode_events import headers as h
from integr8scode_events.codec import peek_envelope
from integr8scode_events.trace_context import extract_w3c

_package = "integr8scode_events"

CONSUME_SPAN = "kafka.consume"

MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_PARTITION = "messaging.destination.partition.id"
MESSAGING_OFFSET = "messaging.kafka.offset"
MESSAGING_KEY = "messaging.kafka.message.key"
MESSAGING_MESSAGE_ID = "messaging.message.id"
MESSAGING_GROUP = "messaging.consumer.group.name"
MESSAGING_CLIENT_ID = "messaging.client.id"
MESSAGING_BODY_SIZE = "messaging.message.body.size"
MESSAGING_BATCH_COUNT = "messaging.batch.message_count"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

EVENT_ID = "event.id"
EVENT_TYPE = "event.type"
EXECUTION_ID = "execution.id"
DEAD_LETTERED = "messaging.dead_lettered"
SKIPPED = "messaging.skipped"
HANDLER_ATTEMPTS = "messaging.handler.attempts"
EVENTS_BATCH_COUNT = "events.batch.count"


def broker_attributes(bootstrap_servers: str) -> dict[str, str | int]:
    """``server.address`` and ``server.port`` of the first bootstrap server (host and port
    apart, as the conventions ask), computed once per client rather than per message."""
    first = bootstrap_servers.split(",", maxsplit=1)[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        return {SERVER_ADDRESS: first} if first else {}
    return {SERVER_ADDRESS: host.strip("[]"), SERVER_PORT: int(port)}


def tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The library's tracer, from the given provider or the global one."""
    return trace.get_tracer(_package, tracer_provider=provider)


def is_noop(active: trace.Tracer) -> bool:
    """True when spans from ``active`` can't be recorded at all: the SDK is disabled, or no
    provider was ever configured in this process. The hot paths then skip span bookkeeping
    entirely (it costs about a third of a publish). Checked per call, so a provider configured
    later is honoured."""
    if isinstance(active, trace.NoOpTracer):
        return True
    return isinstance(active, trace.ProxyTracer) and isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )


# The contract a propagator wrapping plain W3C declares so that the shortcuts below still apply
# (libs/telemetry's ``WithholdingPropagator``; the two libraries don't import each other): a
# class attribute ``trace_context_contract`` equal to this string, an ``inner`` propagator it
# delegates to, and ``withholds(context) -> bool``. Its rules: ``extract`` is ``inner``'s
# unchanged; ``inject`` writes nothing when ``withholds(context)``, else is ``inner``'s.
WITHHOLDING_CONTRACT = "integr8scode.w3c-withholding/1"

_BAGGAGE = "baggage"


class _Plan(NamedTuple):
    """How to inject and extract with a global propagator that is plain W3C underneath: the
    wrapper to ask whether the context is withheld (or None), and the propagators to call
    after the W3C pair is written or read here (W3C baggage, or none)."""

    withholding: Any
    others: tuple[TextMapPropagator, ...]


def inject_context(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """Write the current (or given) context into ``carrier`` with the global propagator.

    When that propagator is plain W3C (the trace-context propagator alone, or with W3C baggage
    in a composite: OpenTelemetry's default), or wraps it under ``WITHHOLDING_CONTRACT``, the
    ``traceparent``/``tracestate`` pair is written here from the span context, exactly as the
    propagator writes it (nothing at all while the wrapper withholds the context), and baggage
    by its own propagator; any other propagator (another format) is called as it is."""
    propagator = propagate.get_global_textmap()
    plan = _w3c_plan(propagator)
    if plan is None:
        propagator.inject(carrier, context=context)
        return
    if plan.withholding is not None and plan.withholding.withholds(context):
        return
    span_context = trace.get_current_span(context).get_span_context()
    if span_context.is_valid:
        carrier[h.TRACEPARENT] = (
            f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
            f"-{span_context.trace_flags:02x}"
        )
        if span_context.trace_state:
            carrier[h.TRACESTATE] = span_context.trace_state.to_header()
    for other in plan.others:
        other.inject(carrier, context=context)


def extract_context(headers: Mapping[str, str]) -> Context:
    """The context a message's headers carry (empty context when none), as the global
    propagator extracts it; read here when it is plain W3C underneath (``inject_context``):
    the ``traceparent`` parsed by the propagator's own pattern and rules, ``tracestate`` (rare)
    and baggage by their propagators, each only when its header is there."""
    propagator = propagate.get_global_textmap()
    plan = _w3c_plan(propagator)
    if plan is None:
        return propagator.extract(headers)
    context = extract_w3c(headers, Context())
    # The others are W3C baggage or nothing; its extract returns the context as it is
    # without the header.
    if plan.others and headers.get(_BAGGAGE):
        for other in plan.others:
            context = other.extract(headers, context)
    return context


# The last global propagator seen and its plan: None (call it), or a ``_Plan``.
_PLAN: tuple[object, _Plan | None] = (None, None)


def _w3c_plan(propagator: TextMapPropagator) -> _Plan | None:
    global _PLAN  # noqa: PLW0603 - a cache of a pure function of the propagator
    seen, plan = _PLAN
    if seen is propagator:
        return plan
    plan = None
    if getattr(type(propagator), "trace_context_contract", None) == WITHHOLDING_CONTRACT:
        inner = _plain_w3c(propagator.inner)  # type: ignore[attr-defined]
        plan = _Plan(propagator, inner) if inner is not None else None
    else:
        others = _plain_w3c(propagator)
        plan = _Plan(None, others) if others is not None else None
    _PLAN = (propagator, plan)
    return plan


def _plain_w3c(propagator: TextMapPropagator) -> tuple[TextMapPropagator, ...] | None:
    """The propagators after W3C trace context when ``propagator`` is plain W3C (alone, or
    with W3C baggage after it); None otherwise."""
    if type(propagator) is TraceContextTextMapPropagator:
        return ()
    if type(propagator) is CompositePropagator:
        parts = tuple(getattr(propagator, "_propagators", ()))
        kinds = [type(part) for part in parts]
        if kinds == [TraceContextTextMapPropagator]:
            return ()
        if kinds == [TraceContextTextMapPropagator, W3CBaggagePropagator]:
            return parts[1:]
    return None


class continued:  # noqa: N801 - used as the function it replaced: ``with continued(ctx)``
    """Make an extracted context current without starting a span (tracing off): gives the
    non-recording span that carries the remote span context (``INVALID_SPAN`` when the message
    had none), and the context's baggage stays with it. A small object rather than a
    generator context manager: it is entered once per consumed message."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: Context) -> None:
        self._context = context
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(self._context)
        return trace.get_current_span(self._context)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]


def message_attributes(value: bytes | None, headers: Mapping[str, str]) -> dict[str, Any]:
    """``event.id``/``messaging.message.id``, ``event.type`` and ``execution.id`` of a message
    forwarded as bytes, read from its envelope (a value that isn't one gives what its headers
    say)."""
    attributes: dict[str, Any] = {}
    if event_type := headers.get(h.EVENT_TYPE):
        attributes[EVENT_TYPE] = event_type
    envelope = peek_envelope(value)
    if isinstance(event_id := envelope.get("event_id"), str):
        attributes[EVENT_ID] = attributes[MESSAGING_MESSAGE_ID] = event_id
    if isinstance(event_type := envelope.get("event_type"), str):
        attributes[EVENT_TYPE] = event_type
    if isinstance(execution_id := envelope.get("execution_id"), str):
        attributes[EXECUTION_ID] = execution_id
    return attributes
