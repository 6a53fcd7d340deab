"""HTTP server spans and metrics from FastAPI's own telemetry, with what the edge adds to them.

FastAPI (0.163) makes a SERVER span per request and records ``http.server.request.duration``
and ``http.server.active_requests`` itself (``FastAPI(telemetry=...)``). Measured in process
(docs/decisions.md, issue 13), it costs ~55 µs of CPU a request over an untraced app, against
~116 µs for OpenTelemetry's FastAPI instrumentation, which it replaces here. What the edge needs
beyond it:

- ``edge_telemetry``: its configuration. Our providers; no operation spans (dependency
  resolution, endpoint, serialisation, background tasks: one span per request is what an
  operator reads); no OpenTelemetry logs (our log lines carry the trace ids); health probes
  left out. Its ``exclude`` hook is the one thing that runs before FastAPI extracts the caller's
  trace context, so that is where the untrusted-context guard strips it (``inbound_trace.py``).
- ``ServerSpanDetails``: middleware inside the request (the server span is current there). It
  adds ``client.address``, ``client.port`` and ``user_agent.original``, links an untrusted
  caller's context, and records an exception that escapes the app as an event on the span
  (FastAPI sets ``error.type`` and the ERROR status).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from starlette.types import ASGIApp, Receive, Scope, Send

from integr8scode_telemetry.inbound_trace import (
    TrustedUpstreams,
    guarded_scope,
    link_untrusted_caller,
)

# Probes would drown the traces and the request metrics.
UNTRACED_PATHS = frozenset({"/health/live", "/health/ready"})

Exclude = Callable[[MutableMapping[str, Any]], bool]


def edge_exclude(trusted: TrustedUpstreams) -> Exclude:
    """FastAPI telemetry's ``exclude`` hook: True (no span, no metric) for the health probes;
    otherwise strips an untrusted caller's trace context from the request, in place, before
    FastAPI extracts it."""

    def exclude(scope: MutableMapping[str, Any]) -> bool:
        if scope.get("path") in UNTRACED_PATHS:
            return True
        if not trusted.everyone:
            guarded = guarded_scope(scope, trusted)
            if guarded is not scope:
                scope.update(guarded)
        return False

    return exclude


def edge_telemetry(
    tracer_provider: trace.TracerProvider,
    meter_provider: MeterProvider,
    trusted: TrustedUpstreams,
) -> TelemetryConfig:
    """FastAPI's telemetry settings for one of our apps (module docstring)."""
    return {
        "tracer_provider": tracer_provider,
        "meter_provider": meter_provider,
        "tracing": True,
        "metrics": True,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,
        "exclude": edge_exclude(trusted),
    }


class ServerSpanDetails:
    """ASGI middleware inside the request: what the edge adds to FastAPI's server span (module
    docstring). A request without a recording span passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        if scope["type"] != "http" or not span.is_recording():
            await self.app(scope, receive, send)
            return
        span.set_attributes(_request_attributes(scope))
        link_untrusted_caller(span, scope)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            span.record_exception(exc)
            raise


def _request_attributes(scope: Scope) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    client = scope.get("client")
    if client:
        host, port = client[0], client[1]
        if host:
            attributes["client.address"] = host
        if isinstance(port, int):
            attributes["client.port"] = port
    for name, value in scope.get("headers") or ():
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")
            break
    return attributes


__all__ = [
    "UNTRACED_PATHS",
    "ServerSpanDetails",
    "edge_exclude",
    "edge_telemetry",
]
