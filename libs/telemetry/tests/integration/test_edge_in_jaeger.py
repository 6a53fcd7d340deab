"""The edge's new root and its link to the caller, as they reach Jaeger through the collector
(what the end-to-end test of the api reads back)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.stack import local_stack

from integr8scode_telemetry import TelemetrySettings, init_telemetry, instrument_fastapi

STACK = local_stack()


@pytest.mark.parametrize("flags", ["00", "01"])
async def test_the_server_span_is_a_new_root_linked_to_the_caller(flags: str) -> None:
    service = f"edge-it-{uuid.uuid4().hex[:6]}"
    handle = init_telemetry(
        TelemetrySettings(otlp_endpoint=STACK.otlp_grpc),
        service,
        "it",
        set_global=False,
        instrument_libraries=False,
    )
    app = FastAPI()

    @app.get("/whoami")
    async def whoami() -> dict[str, str]:
        context = trace.get_current_span().get_span_context()
        return {"trace_id": trace.format_trace_id(context.trace_id)}

    instrument_fastapi(app, handle)
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
            response = await http.get(
                "/whoami", headers={"traceparent": f"00-{caller_trace}-{caller_span}-{flags}"}
            )
        assert response.status_code == 200
        trace_id = response.json()["trace_id"]
        assert handle.force_flush()
    finally:
        handle.shutdown()
    assert trace_id != caller_trace

    def has_server(found: JaegerTrace) -> bool:
        return any(s.kind == "server" for s in found.spans)

    found = await wait_for_trace(STACK.jaeger_query, trace_id, until=has_server)
    span = next(s for s in found.spans if s.kind == "server")
    assert span.service == service
    assert span.parent_id is None
    assert (caller_trace, caller_span) in span.links
    assert span.tag("integr8scode.caller.trace_id") == caller_trace
