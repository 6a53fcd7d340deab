"""Every service's HTTP server (the api and the four admin APIs) is built with the edge guard of
libs/telemetry: an outside caller's trace context goes nowhere, a trusted upstream's is passed on
unchanged (tracing is off here, as in the services' other unit tests: nothing is recorded)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from integr8scode_telemetry.outbound_trace import trace_context_headers

INBOUND = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "vendor=caller",
    "baggage": "tenant=caller",
}


def _api(fields: dict[str, Any]) -> FastAPI:
    from integr8scode_api.app import create_app  # noqa: PLC0415 - one service per case
    from integr8scode_api.config import Settings  # noqa: PLC0415

    return create_app(Settings.model_validate({**fields, "redis": {"url": "redis://127.0.0.1:1"}}))


def _coordinator(fields: dict[str, Any]) -> FastAPI:
    from integr8scode_coordinator.app import create_app  # noqa: PLC0415
    from integr8scode_coordinator.config import Settings  # noqa: PLC0415

    return create_app(Settings.model_validate(fields))


def _dlq_processor(fields: dict[str, Any]) -> FastAPI:
    from integr8scode_dlq_processor.app import create_app  # noqa: PLC0415
    from integr8scode_dlq_processor.config import Settings  # noqa: PLC0415

    return create_app(Settings.model_validate(fields))


def _event_replay(fields: dict[str, Any]) -> FastAPI:
    from integr8scode_event_replay.app import create_app  # noqa: PLC0415
    from integr8scode_event_replay.config import Settings  # noqa: PLC0415

    return create_app(Settings.model_validate(fields))


def _notifier(fields: dict[str, Any]) -> FastAPI:
    from integr8scode_notifier.app import create_app  # noqa: PLC0415
    from integr8scode_notifier.config import Settings  # noqa: PLC0415

    return create_app(Settings.model_validate(fields))


SERVICES: dict[str, Callable[[dict[str, Any]], FastAPI]] = {
    "api": _api,
    "coordinator": _coordinator,
    "dlq-processor": _dlq_processor,
    "event-replay": _event_replay,
    "notifier": _notifier,
}


async def _outbound_context(service: str, trusted: str) -> dict[str, str]:
    """What a request of the service would pass on (publish, store, call), given the caller's
    context from 198.51.100.4. Nothing connects: the lifespan is not run."""
    app = SERVICES[service](
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:1"},
            "mongo": {"url": "mongodb://127.0.0.1:1"},
            "telemetry": {"sdk_disabled": True, "trace_trusted_upstreams": trusted},
        }
    )

    async def passed_on() -> dict[str, str]:
        return trace_context_headers()

    app.add_api_route("/test/passed-on", passed_on)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.4", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        response = await http.get("/test/passed-on", headers=INBOUND)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_an_outside_callers_context_goes_nowhere(service: str) -> None:
    assert await _outbound_context(service, trusted="") == {}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_a_trusted_upstreams_context_is_passed_on_unchanged(service: str) -> None:
    assert await _outbound_context(service, trusted="198.51.100.0/24") == INBOUND
