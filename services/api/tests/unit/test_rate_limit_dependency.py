"""The rate-limit dependency over HTTP: headers, 429, who is counted, spans, a dead limiter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from integr8scode_api.domain.users import Role
from integr8scode_telemetry.http_server_spans import edge_telemetry
from integr8scode_telemetry.inbound_trace import TrustedUpstreams

if TYPE_CHECKING:
    from conftest import Harness

LOGIN = "/api/v1/auth/login"
RULES = "/api/v1/admin/rate-limits"
BAD_LOGIN = {"username": "nobody", "password": "Sturdy-Lantern-41"}


def _tighten(harness: Harness, name: str, **spec: object) -> None:
    admin = harness.bearer(harness.add_user(role=Role.ADMIN))
    body = {"limit": 2, "window_s": 60, "algorithm": "sliding_window", "scope": "user", **spec}
    assert harness.client.put(f"{RULES}/{name}", json=body, headers=admin).status_code == 200


def test_every_counted_response_has_the_limit_headers(harness: Harness) -> None:
    response = harness.client.post(LOGIN, json=BAD_LOGIN)
    assert response.status_code == 401  # an error answer still carries them
    assert response.headers["X-RateLimit-Limit"] == "20"
    assert response.headers["X-RateLimit-Remaining"] == "19"
    assert response.headers["X-RateLimit-Reset"] == "60"
    assert "Retry-After" not in response.headers


def test_health_is_not_rate_limited(harness: Harness) -> None:
    response = harness.client.get("/health/live")
    assert "X-RateLimit-Limit" not in response.headers
    assert harness.limiter.calls == 0


def test_over_the_limit_is_429_with_retry_after(harness: Harness) -> None:
    _tighten(harness, "auth", pattern="POST /api/v1/auth/*", scope="client")
    codes = [harness.client.post(LOGIN, json=BAD_LOGIN).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    refused = harness.client.post(LOGIN, json=BAD_LOGIN)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert "rate limit 'auth' exceeded" in refused.json()["detail"]


def test_invalid_input_is_counted_too(harness: Harness) -> None:
    _tighten(harness, "auth", pattern="POST /api/v1/auth/*", scope="client")
    assert harness.client.post(LOGIN, json={}).status_code == 422
    assert harness.client.post(LOGIN, json={}).headers["X-RateLimit-Remaining"] == "0"
    assert harness.client.post(LOGIN, json=BAD_LOGIN).status_code == 429


def test_users_are_counted_apart_and_anonymous_callers_by_address(harness: Harness) -> None:
    _tighten(harness, "me", pattern="GET /api/v1/auth/me")
    alice, bob = harness.bearer(harness.add_user()), harness.bearer(harness.add_user())
    for _ in range(2):
        assert harness.client.get("/api/v1/auth/me", headers=alice).status_code == 200
    assert harness.client.get("/api/v1/auth/me", headers=alice).status_code == 429
    assert harness.client.get("/api/v1/auth/me", headers=bob).status_code == 200
    # no (or an invalid) token: counted per client address, then refused as 401
    assert harness.client.get("/api/v1/auth/me").status_code == 401
    assert ("me", "client:testclient") in harness.limiter.counts


def test_the_limit_is_checked_before_authentication(harness: Harness) -> None:
    _tighten(harness, "me", pattern="GET /api/v1/auth/me")
    bogus = {"Authorization": "Bearer forged"}
    codes = [harness.client.get("/api/v1/auth/me", headers=bogus).status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def test_a_dead_limiter_fails_open_without_headers(harness: Harness) -> None:
    harness.limiter.down = True
    response = harness.client.post(LOGIN, json=BAD_LOGIN)
    assert response.status_code == 401
    assert "X-RateLimit-Limit" not in response.headers


def test_a_dead_limiter_fails_closed_when_configured_so(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(fail_open=False)
    harness.limiter.down = True
    response = harness.client.post(LOGIN, json=BAD_LOGIN)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


@pytest.fixture
def spans(harness: Harness) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    harness.app.state.api.tracer = provider.get_tracer("test")
    # FastAPI's own server spans, as instrument_fastapi configures them (read per request).
    harness.app._telemetry.update(
        edge_telemetry(provider, NoOpMeterProvider(), TrustedUpstreams(everyone=True))
    )
    try:
        yield exporter
    finally:
        harness.app._telemetry["tracing"] = False


def _server_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    return next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER)


def test_the_decision_is_on_the_request_span_and_a_child_span(
    harness: Harness, spans: InMemorySpanExporter
) -> None:
    harness.client.post(LOGIN, json=BAD_LOGIN)
    server = _server_span(spans)
    check = next(s for s in spans.get_finished_spans() if s.name == "rate_limit.check")
    for span in (server, check):
        attrs = dict(span.attributes or {})
        assert attrs["rate_limit.rule"] == "auth"
        assert attrs["rate_limit.algorithm"] == "sliding_window"
        assert attrs["rate_limit.allowed"] is True
        assert attrs["rate_limit.limit"] == 20
        assert attrs["rate_limit.remaining"] == 19
    assert check.parent is not None
    assert check.parent.span_id == server.context.span_id
    assert dict(server.attributes or {})["client.address"] == "testclient"


def test_a_refusal_and_the_user_show_on_the_request_span(
    harness: Harness, spans: InMemorySpanExporter
) -> None:
    _tighten(harness, "me", pattern="GET /api/v1/auth/me", limit=1)
    user = harness.add_user()
    headers = harness.bearer(user)
    harness.client.get("/api/v1/auth/me", headers=headers)
    spans.clear()
    harness.client.get("/api/v1/auth/me", headers=headers)
    attrs = dict(_server_span(spans).attributes or {})
    assert attrs["rate_limit.allowed"] is False
    assert attrs["rate_limit.remaining"] == 0
    assert attrs["user.id"] == user.id


def test_a_degraded_check_is_marked_on_the_span(
    harness: Harness, spans: InMemorySpanExporter
) -> None:
    harness.limiter.down = True
    harness.client.post(LOGIN, json=BAD_LOGIN)
    attrs = dict(_server_span(spans).attributes or {})
    assert attrs["rate_limit.degraded"] is True
    assert attrs["rate_limit.allowed"] is True
    assert "rate_limit.remaining" not in attrs
