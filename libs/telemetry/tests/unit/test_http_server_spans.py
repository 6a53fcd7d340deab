"""HTTP server spans from FastAPI's own telemetry as ``instrument_fastapi`` configures it: one
span per request with the route template, the peers, the status; none for the health probes;
an escaping exception recorded; FastAPI's settings where FastAPI reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from integr8scode_telemetry.settings import TelemetrySettings
from integr8scode_telemetry.setup import TelemetryHandle, init_telemetry, instrument_fastapi

PEER = ("198.51.100.7", 41000)


@dataclass
class Server:
    http: httpx.AsyncClient
    exporter: InMemorySpanExporter
    handle: TelemetryHandle
    app: FastAPI

    def server_spans(self) -> list[ReadableSpan]:
        assert self.handle.force_flush()
        return [s for s in self.exporter.get_finished_spans() if s.kind == SpanKind.SERVER]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    exporter = InMemorySpanExporter()
    handle = init_telemetry(
        TelemetrySettings(),
        "api",
        "0.0.1",
        set_global=False,
        instrument_libraries=False,
        span_exporter=exporter,
    )
    app = FastAPI()
    items = APIRouter(prefix="/v1")

    @items.post("/items/{item_id}", status_code=202)
    async def create(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @items.get("/broken")
    async def broken() -> None:
        raise RuntimeError("the store said no")

    api = APIRouter(prefix="/api")
    api.include_router(items)
    app.include_router(api)

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    instrument_fastapi(app, handle)
    transport = httpx.ASGITransport(app=app, client=PEER, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
            yield Server(http, exporter, handle, app)
    finally:
        handle.shutdown()


@pytest.mark.parametrize(
    ("host", "address", "port"),
    [
        ("127.0.0.1:8000", "127.0.0.1", 8000),
        ("[::1]:8443", "::1", 8443),
        ("api.internal", "api.internal", 80),
    ],
)
async def test_one_server_span_per_request_named_by_its_route(
    server: Server, host: str, address: str, port: int
) -> None:
    response = await server.http.post(
        "/api/v1/items/abc?page=2", headers={"host": host, "user-agent": "probe/1.0"}
    )
    assert response.status_code == 202

    [span] = server.server_spans()
    assert span.name == "POST /api/v1/items/{item_id}"
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "fastapi"
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes == attributes | {
        "http.request.method": "POST",
        "http.route": "/api/v1/items/{item_id}",
        "http.response.status_code": 202,
        "url.scheme": "http",
        "url.path": "/api/v1/items/abc",
        "url.query": "page=2",
        "server.address": address,
        "server.port": port,
        "client.address": PEER[0],
        "client.port": PEER[1],
        "user_agent.original": "probe/1.0",
        "network.protocol.version": "1.1",
    }


async def test_the_health_probes_make_no_span(server: Server) -> None:
    assert (await server.http.get("/health/live")).status_code == 200
    assert (await server.http.post("/api/v1/items/x")).status_code == 202

    assert [s.name for s in server.server_spans()] == ["POST /api/v1/items/{item_id}"]


async def test_an_escaping_exception_is_recorded_and_sets_error(server: Server) -> None:
    response = await server.http.get("/api/v1/broken")
    assert response.status_code == 500

    [span] = server.server_spans()
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "RuntimeError"
    assert attributes["http.response.status_code"] == 500
    [event] = span.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.message"] == "the store said no"


async def test_fastapi_reads_the_settings_instrument_fastapi_gave_it(server: Server) -> None:
    # instrument_fastapi fills FastAPI's own telemetry settings after construction: this fails
    # if a FastAPI upgrade keeps them elsewhere.
    settings = server.app._telemetry
    assert settings is server.app._native_telemetry.config
    assert settings["tracer_provider"] is server.handle.tracer_provider
    assert settings["meter_provider"] is server.handle.meter_provider
    assert (settings["operation_spans"], settings["logs"]) == (False, False)
