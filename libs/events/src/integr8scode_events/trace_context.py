"""One stored W3C trace context: the ``traceparent``/``tracestate`` pair kept with a saga, an
archived event, a dead letter or an outbox entry, and read back to continue or link its trace.

Parsing and formatting go through the W3C TraceContext propagator itself, not the process's
global propagator: what is stored is the W3C pair whatever else (baggage, another format) a
service propagates on the wire. The strings are kept as they travelled (documents keep the
same two fields, byte for byte); they are parsed only when asked, once per instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from integr8scode_events.headers import TRACEPARENT, TRACESTATE

_W3C = TraceContextTextMapPropagator()
_TRACEPARENT_RE = TraceContextTextMapPropagator._TRACEPARENT_HEADER_FORMAT_RE


def extract_w3c(carrier: Mapping[str, str], context: Context) -> Context:
    """What ``TraceContextTextMapPropagator().extract(carrier, context)`` gives, without its
    getter and generic header handling when there is no ``tracestate`` (nearly always): the
    ``traceparent`` parsed by the propagator's own pattern and rules. With a ``tracestate``
    the propagator itself parses both (its length limit and parsing, as they are)."""
    traceparent = carrier.get(TRACEPARENT)
    if not traceparent:
        return context
    if carrier.get(TRACESTATE) is not None:
        return _W3C.extract(carrier, context)
    match = _TRACEPARENT_RE.search(traceparent)
    if not match:
        return context
    version, trace_id, span_id, flags, rest = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return context
    if (version == "00" and rest) or version == "ff":
        return context
    span_context = SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(flags, 16)),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context), context)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class StoredTraceContext:
    """A W3C trace context as stored: ``traceparent`` and ``tracestate``, each None when absent.

    Build one with ``capture()`` (the current or a given context), ``from_headers()`` (a
    message's headers) or ``from_document()`` (a stored document's two fields); read it back as
    ``context()`` (to continue the trace), ``span_context`` (for a link, or to resume under),
    ``trace_id`` / ``span_id`` (hex), ``fields()`` (to store) or ``carrier()`` (to send). A
    missing, malformed or all-zero ``traceparent`` gives no span context, no ids and an empty
    context; the stored strings are kept all the same."""

    traceparent: str | None = None
    tracestate: str | None = None
    # What the propagator made of them, on first use (not part of equality or the repr).
    _parsed: tuple[Context, SpanContext | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def capture(cls, context: Context | None = None) -> StoredTraceContext:
        """The context of the current span (or of the span in ``context``); empty when there is
        none. Baggage is not part of it."""
        carrier: dict[str, str] = {}
        _W3C.inject(carrier, context=context)
        return cls(carrier.get(TRACEPARENT), carrier.get(TRACESTATE))

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> StoredTraceContext:
        """The context a message's headers carry (an empty header counts as absent)."""
        return cls(_text(headers.get(TRACEPARENT)), _text(headers.get(TRACESTATE)))

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> StoredTraceContext:
        """The context stored in a document's ``traceparent`` / ``tracestate`` fields; a field
        that is missing or not a string counts as absent."""
        return cls(_text(document.get(TRACEPARENT)), _text(document.get(TRACESTATE)))

    def fields(self) -> dict[str, str | None]:
        """The two fields to store in a document (both present, None when absent)."""
        return {TRACEPARENT: self.traceparent, TRACESTATE: self.tracestate}

    def carrier(self) -> dict[str, str]:
        """The headers to send: ``traceparent``, and ``tracestate`` only alongside it."""
        if not self.traceparent:
            return {}
        if not self.tracestate:
            return {TRACEPARENT: self.traceparent}
        return {TRACEPARENT: self.traceparent, TRACESTATE: self.tracestate}

    def _parse(self) -> tuple[Context, SpanContext | None]:
        parsed = self._parsed
        if parsed is None:
            # On an empty context, never the current one: nothing of the caller's (its span,
            # its suppression flag, its baggage) leaks into what the stored context continues.
            context = extract_w3c(self.carrier(), Context())
            found = trace.get_current_span(context).get_span_context()
            parsed = (context, found if found.is_valid else None)
            object.__setattr__(self, "_parsed", parsed)  # a cache: the value doesn't change
        return parsed

    def context(self) -> Context:
        """A context whose current span is the stored (remote) one, to start spans under; an
        empty context (so a new root) when there is no usable stored context."""
        return self._parse()[0]

    @property
    def span_context(self) -> SpanContext | None:
        """The stored span as a remote span context (for links), or None when unusable."""
        return self._parse()[1]

    @property
    def trace_id(self) -> str | None:
        """The trace id as 32 lowercase hex digits, or None."""
        found = self.span_context
        return trace.format_trace_id(found.trace_id) if found is not None else None

    @property
    def span_id(self) -> str | None:
        """The stored span's id as 16 lowercase hex digits, or None."""
        found = self.span_context
        return trace.format_span_id(found.span_id) if found is not None else None
