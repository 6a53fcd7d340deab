"""Traces from the Jaeger query API (``GET /api/traces/{trace_id}``), as ``TraceSpan``s.

Errors are translated here: no answer, a timeout or a 5xx is ``DependencyUnavailableError``
(503 at the edge); Jaeger's 404 is "no such trace" (None), which the timeline reports as
incomplete. The query is an ordinary HTTP client span of the request that asked."""

from __future__ import annotations

from typing import Any

import httpx

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.trace import AttributeValue, TraceSpan

UNAVAILABLE = "the trace backend (Jaeger query API) is unavailable; try again later"


class JaegerTraces:
    def __init__(self, client: httpx.AsyncClient, *, ui_url: str) -> None:
        """``client`` carries the query endpoint as its base URL and the timeout."""
        self._client = client
        self._ui = ui_url.rstrip("/")

    def trace_url(self, trace_id: str) -> str:
        return f"{self._ui}/trace/{trace_id}"

    async def trace(self, trace_id: str) -> list[TraceSpan] | None:
        try:
            response = await self._client.get(f"/api/traces/{trace_id}")
        except httpx.HTTPError as exc:
            raise DependencyUnavailableError(
                f"{UNAVAILABLE} ({type(exc).__name__})", dependency="jaeger"
            ) from exc
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            raise DependencyUnavailableError(
                f"{UNAVAILABLE} (HTTP {response.status_code})", dependency="jaeger"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise DependencyUnavailableError(
                f"{UNAVAILABLE} (not JSON)", dependency="jaeger"
            ) from exc
        return parse_traces(body, trace_id)


def parse_traces(body: Any, trace_id: str) -> list[TraceSpan] | None:
    """The spans of ``trace_id`` in a Jaeger ``/api/traces`` answer; None when it has none."""
    data = body.get("data") if isinstance(body, dict) else None
    traces = [t for t in data or [] if isinstance(t, dict)]
    wanted = [t for t in traces if str(t.get("traceID", "")).lower() == trace_id.lower()]
    spans = [
        _span(raw, t.get("processes") or {})
        for t in wanted or traces
        for raw in t.get("spans") or []
        if isinstance(raw, dict) and raw.get("spanID")
    ]
    return spans or None


def _attributes(tags: Any) -> dict[str, AttributeValue]:
    found: dict[str, AttributeValue] = {}
    for tag in tags or []:
        value = tag.get("value")
        if isinstance(value, str | int | float | bool):
            found[str(tag.get("key"))] = value
    return found


def _span(raw: dict[str, Any], processes: dict[str, Any]) -> TraceSpan:
    tags = _attributes(raw.get("tags"))
    parent = next(
        (r.get("spanID") for r in raw.get("references") or [] if r.get("refType") == "CHILD_OF"),
        None,
    )
    process = processes.get(str(raw.get("processID")), {})
    return TraceSpan(
        span_id=str(raw["spanID"]),
        parent_id=str(parent) if parent else None,
        service=str(process.get("serviceName", "unknown")),
        name=str(raw.get("operationName", "")),
        start_us=int(raw.get("startTime", 0)),
        duration_us=int(raw.get("duration", 0)),
        kind=str(tags.pop("span.kind", "internal")),
        error=tags.get("otel.status_code") == "ERROR" or tags.get("error") is True,
        attributes=tags,
    )
