"""The HTTP edge does not take a caller's trace context on trust.

A ``traceparent`` from outside would let any client pick the trace id the platform stores, or
switch recording off for a whole execution with the flags ``00``. So, unless the peer is a
trusted upstream (``INTEGR8SCODE_TRACE_TRUSTED_UPSTREAMS``: an internal gateway, or ``all``),
``guarded_scope`` removes ``traceparent``, ``tracestate`` and ``baggage`` from the request before
FastAPI's telemetry extracts them (from its ``exclude`` hook, ``http_server_spans.py``), and
``UntrustedTraceContextGuard`` again before the app sees the request (so the app never does,
whatever the telemetry's settings): the server span becomes the root of a new trace, sampled by
this process's sampler, and ``link_untrusted_caller`` links that span to the caller's context
and names the caller's trace id in an attribute, so the two traces can still be joined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Receive, Scope, Send

from integr8scode_telemetry.attributes import CALLER_TRACE_ID, LINK_REASON

TRUST_ALL = "all"
# Where the guard leaves the caller's span context for the server span's hook.
CALLER_CONTEXT_KEY = "integr8scode.caller_span_context"
UNTRUSTED_CALLER = "untrusted_caller"

_TRACE_HEADERS = (b"traceparent", b"tracestate")
_CONTEXT_HEADERS = frozenset({*_TRACE_HEADERS, b"baggage"})
_W3C = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class TrustedUpstreams:
    """The peers whose inbound trace context is continued: everyone, or addresses in networks."""

    everyone: bool = False
    networks: tuple[IPv4Network | IPv6Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedUpstreams:
        """``""`` (nobody), ``all``, or comma-separated addresses and CIDRs; ``ValueError``
        naming the offending item otherwise."""
        items = [item.strip() for item in text.split(",") if item.strip()]
        if any(item.lower() == TRUST_ALL for item in items):
            if len(items) > 1:
                raise ValueError(f"{TRUST_ALL!r} can't be combined with addresses: {text!r}")
            return cls(everyone=True)
        networks: list[IPv4Network | IPv6Network] = []
        for item in items:
            try:
                networks.append(ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"not an IP address or CIDR: {item!r} (expected e.g. 10.0.0.0/8, ::1 or all)"
                ) from None
        return cls(networks=tuple(networks))

    def trusts(self, peer: str | None) -> bool:
        """Whether a request from ``peer`` (the ASGI client host) keeps its trace context."""
        if self.everyone:
            return True
        if not peer or not self.networks:
            return False
        try:
            address = ip_address(peer)
        except ValueError:
            return False  # a unix socket or a test client's name: not an address we trust
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


class UntrustedTraceContextGuard:
    """ASGI middleware, outermost in the app's stack: strips the W3C context headers of an
    untrusted request and keeps the caller's span context in the scope (module docstring)."""

    def __init__(self, app: ASGIApp, trusted: TrustedUpstreams) -> None:
        self.app = app
        self._trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"}:
            scope = self.guarded(scope)
        await self.app(scope, receive, send)

    def guarded(self, scope: Scope) -> Scope:
        """The scope as the rest of the app sees it (a copy when something was removed)."""
        return guarded_scope(scope, self._trusted)


def guarded_scope(scope: Scope, trusted: TrustedUpstreams) -> Scope:
    """``scope`` as the app may see it: itself when it carries no trace context or comes from
    a trusted peer; else a copy without ``traceparent``, ``tracestate`` and ``baggage``, with the
    caller's span context under ``CALLER_CONTEXT_KEY`` (when it named a valid one)."""
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or ()
    headers = list(headers)
    if not any(name.lower() in _CONTEXT_HEADERS for name, _ in headers):
        return scope
    client = scope.get("client")
    if trusted.trusts(client[0] if client else None):
        return scope
    guarded = dict(scope)
    guarded["headers"] = [(n, v) for n, v in headers if n.lower() not in _CONTEXT_HEADERS]
    caller = caller_span_context(headers)
    if caller is not None:
        guarded[CALLER_CONTEXT_KEY] = caller
    return guarded


def caller_span_context(headers: Iterable[tuple[bytes, bytes]]) -> SpanContext | None:
    """The span context a request's ``traceparent``/``tracestate`` name, or None when absent or
    malformed (W3C parsing rules)."""
    carrier = {
        name.lower().decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name.lower() in _TRACE_HEADERS
    }
    context = trace.get_current_span(_W3C.extract(carrier, context=Context())).get_span_context()
    return context if context.is_valid else None


def link_untrusted_caller(span: trace.Span, scope: Mapping[str, Any]) -> None:
    """Link the server span to the caller's context the guard kept."""
    caller = scope.get(CALLER_CONTEXT_KEY)
    if not isinstance(caller, SpanContext) or not span.is_recording():
        return
    span.add_link(caller, {LINK_REASON: UNTRUSTED_CALLER})
    span.set_attribute(CALLER_TRACE_ID, trace.format_trace_id(caller.trace_id))


__all__ = [
    "CALLER_CONTEXT_KEY",
    "TrustedUpstreams",
    "UntrustedTraceContextGuard",
    "caller_span_context",
    "guarded_scope",
    "link_untrusted_caller",
]
