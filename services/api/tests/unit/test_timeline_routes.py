"""``GET /api/v1/executions/{id}/timeline`` through the HTTP edge (owner/admin, 401, 404, 503,
a missing trace), the Jaeger adapter over a mocked transport, and the execution page's files
and security headers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient

from integr8scode_api.adapters.jaeger_traces import JaegerTraces, parse_traces
from integr8scode_api.app import build_app
from integr8scode_api.domain.errors import DependencyUnavailableError, NotFoundError
from integr8scode_api.domain.executions import ExecutionStatus, ExecutionView
from integr8scode_api.domain.trace import TraceSpan
from integr8scode_api.domain.users import Role, User
from integr8scode_api.routes.page import CONTENT_SECURITY_POLICY
from integr8scode_api.timeline_service import TimelineService

if TYPE_CHECKING:
    from conftest import Harness

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = 1_700_000_000_000_000


@dataclass
class FakeReader:
    """Executions by id with their owner; others get the API's 404."""

    owners: dict[str, str] = field(default_factory=dict)
    views: dict[str, ExecutionView] = field(default_factory=dict)

    def add(self, owner: User, execution_id: str, *, trace_id: str | None = TRACE_ID) -> None:
        self.owners[execution_id] = owner.id
        self.views[execution_id] = ExecutionView(
            execution_id=execution_id,
            status=ExecutionStatus.COMPLETED,
            language="python",
            language_version="3.12",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            started_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
            trace_id=trace_id,
        )

    async def get(self, user: User, execution_id: str) -> ExecutionView:
        if execution_id not in self.views or (
            self.owners[execution_id] != user.id and user.role is not Role.ADMIN
        ):
            raise NotFoundError(f"execution {execution_id} not found")
        return self.views[execution_id]


@dataclass
class FakeTraces:
    spans: dict[str, list[TraceSpan]] = field(default_factory=dict)
    down: bool = False

    async def trace(self, trace_id: str) -> list[TraceSpan] | None:
        if self.down:
            raise DependencyUnavailableError("the trace backend is unavailable", dependency="j")
        return self.spans.get(trace_id)

    def trace_url(self, trace_id: str) -> str:
        return f"http://jaeger.example/trace/{trace_id}"


@dataclass
class Timelines:
    harness: Harness
    reader: FakeReader
    traces: FakeTraces
    client: TestClient


@pytest.fixture
def tl(harness: Harness) -> Timelines:
    reader, traces = FakeReader(), FakeTraces()
    app = build_app(harness.app.state.api, timelines=TimelineService(reader, traces))
    return Timelines(harness, reader, traces, TestClient(app, raise_server_exceptions=False))


def root_span() -> TraceSpan:
    return TraceSpan(
        span_id="a" * 16,
        parent_id=None,
        service="integr8scode-backend",
        name="POST /api/v1/execute",
        start_us=T0,
        duration_us=5000,
        kind="server",
    )


def test_the_owner_gets_the_timeline_and_the_jaeger_link(tl: Timelines) -> None:
    owner = tl.harness.add_user()
    tl.reader.add(owner, "e1")
    tl.traces.spans[TRACE_ID] = [root_span()]
    response = tl.client.get("/api/v1/executions/e1/timeline", headers=tl.harness.bearer(owner))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["trace_id"], body["links"]["jaeger"]) == (
        TRACE_ID,
        f"http://jaeger.example/trace/{TRACE_ID}",
    )
    assert [p["name"] for p in body["phases"]] == ["accepted"]
    assert body["complete"] is False
    assert "sandbox" in body["missing"]
    assert body["spans"][0]["critical"] is True


def test_an_admin_may_read_anyones_timeline(tl: Timelines) -> None:
    owner, admin = tl.harness.add_user(), tl.harness.add_user(role=Role.ADMIN)
    tl.reader.add(owner, "e1")
    tl.traces.spans[TRACE_ID] = [root_span()]
    response = tl.client.get("/api/v1/executions/e1/timeline", headers=tl.harness.bearer(admin))
    assert response.status_code == 200


def test_another_users_execution_is_404_and_no_token_is_401(tl: Timelines) -> None:
    owner, other = tl.harness.add_user(), tl.harness.add_user()
    tl.reader.add(owner, "e1")
    response = tl.client.get("/api/v1/executions/e1/timeline", headers=tl.harness.bearer(other))
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]
    assert tl.client.get("/api/v1/executions/e1/timeline").status_code == 401


def test_jaeger_down_is_503_with_a_detail(tl: Timelines) -> None:
    owner = tl.harness.add_user()
    tl.reader.add(owner, "e1")
    tl.traces.down = True
    response = tl.client.get("/api/v1/executions/e1/timeline", headers=tl.harness.bearer(owner))
    assert response.status_code == 503
    assert "trace backend" in response.json()["detail"]
    assert response.headers["Retry-After"] == "1"


def test_a_trace_not_in_jaeger_or_no_trace_id_is_an_incomplete_timeline(tl: Timelines) -> None:
    owner = tl.harness.add_user()
    tl.reader.add(owner, "e1")
    tl.reader.add(owner, "e2", trace_id=None)
    for execution_id, words in (("e1", "not in the trace backend"), ("e2", "no trace id")):
        response = tl.client.get(
            f"/api/v1/executions/{execution_id}/timeline", headers=tl.harness.bearer(owner)
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["complete"], body["phases"], body["total_ms"]) == (False, [], None)
        assert words in body["reason"]
        assert body["missing"][0] == "accepted"


def test_the_timeline_is_in_the_openapi_document_with_its_model(tl: Timelines) -> None:
    doc = tl.client.get("/openapi.json").json()
    op = doc["paths"]["/api/v1/executions/{execution_id}/timeline"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/Timeline")
    assert {"401", "404", "503"} <= set(op["responses"])
    assert "/executions/{execution_id}" not in doc["paths"]  # the page is not an API route


def test_the_page_and_its_assets_carry_a_strict_csp(tl: Timelines) -> None:
    page = tl.client.get("/executions/e1")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    html = page.text
    assert '<script src="/page/execution.js"' in html
    assert "<script>" not in html
    assert " on" + "click=" not in html
    script = tl.client.get("/page/execution.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text  # data is written with textContent only
    assert tl.client.get("/page/execution.css").status_code == 200


# --- the Jaeger adapter -----------------------------------------------------------------------


def jaeger_answer() -> dict[str, Any]:
    """What ``GET /api/traces/{id}`` answers, cut down to what the adapter reads."""
    return {
        "data": [
            {
                "traceID": TRACE_ID,
                "processes": {"p1": {"serviceName": "integr8scode-backend"}},
                "spans": [
                    {
                        "spanID": "b" * 16,
                        "operationName": "publish execution_requests",
                        "references": [
                            {"refType": "CHILD_OF", "traceID": TRACE_ID, "spanID": "a" * 16}
                        ],
                        "startTime": T0 + 10,
                        "duration": 900,
                        "processID": "p1",
                        "tags": [
                            {"key": "span.kind", "type": "string", "value": "producer"},
                            {"key": "event.type", "type": "string", "value": "x.y"},
                            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                        ],
                    }
                ],
            }
        ],
        "errors": None,
    }


def test_a_jaeger_answer_becomes_spans() -> None:
    [span] = parse_traces(jaeger_answer(), TRACE_ID) or []
    assert (span.span_id, span.parent_id, span.service, span.kind, span.error) == (
        "b" * 16,
        "a" * 16,
        "integr8scode-backend",
        "producer",
        True,
    )
    assert (span.start_us, span.duration_us, span.attr("event.type")) == (T0 + 10, 900, "x.y")
    assert parse_traces({"data": []}, TRACE_ID) is None


def adapter(handler: Any) -> JaegerTraces:
    client = httpx.AsyncClient(
        base_url="http://jaeger.test", transport=httpx.MockTransport(handler)
    )
    return JaegerTraces(client, ui_url="http://ui.test/")


async def test_the_adapter_reads_the_trace_404_is_none_and_failures_are_503() -> None:
    seen: list[str] = []

    def ok(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, content=json.dumps(jaeger_answer()))

    spans = await adapter(ok).trace(TRACE_ID)
    assert spans is not None
    assert len(spans) == 1
    assert seen == [f"/api/traces/{TRACE_ID}"]
    assert adapter(ok).trace_url(TRACE_ID) == f"http://ui.test/trace/{TRACE_ID}"

    missing = adapter(lambda _: httpx.Response(404, json={"errors": [{"code": 404}]}))
    assert await missing.trace(TRACE_ID) is None

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    for failing in (
        adapter(lambda _: httpx.Response(500, text="boom")),
        adapter(lambda _: httpx.Response(200, text="<html>")),
        adapter(refused),
    ):
        with pytest.raises(DependencyUnavailableError, match="Jaeger"):
            await failing.trace(TRACE_ID)
