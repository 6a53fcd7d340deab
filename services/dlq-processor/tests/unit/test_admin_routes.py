"""The admin API over fakes: auth (401/403), filters (422), unknown ids (404), state (409)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from integr8scode_dlq_processor.domain.records import DeadLetter, Status
from integr8scode_dlq_processor.domain.reports import FailureReport

if TYPE_CHECKING:  # conftest is not importable at run time (--import-mode=importlib)
    from conftest import AdminHarness

ReportFactory = Callable[..., FailureReport]
BASE = "/api/v1/dlq"


async def _stored(admin: AdminHarness, report: FailureReport) -> DeadLetter:
    return (await admin.parts.service.receive(report)).record


def test_no_token_is_401_with_a_challenge(admin: AdminHarness) -> None:
    response = admin.client.get(f"{BASE}/messages")
    assert response.status_code == 401
    assert response.json() == {
        "detail": "missing bearer token (Authorization: Bearer <access_token>)"
    }
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "claims",
    [
        {"secret": "another-secret-that-is-long-enough-for-hs256"},
        {"exp": datetime.now(UTC) - timedelta(minutes=5)},
        {"jti": None},
        {"sub": None},
    ],
)
def test_invalid_tokens_are_401(
    admin: AdminHarness, make_token: Callable[..., str], claims: dict[str, Any]
) -> None:
    response = admin.client.get(
        f"{BASE}/stats", headers={"Authorization": f"Bearer {make_token('admin', **claims)}"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_a_user_who_is_not_an_admin_is_403(admin: AdminHarness) -> None:
    for method, path in (
        ("GET", f"{BASE}/messages"),
        ("GET", f"{BASE}/stats"),
        ("POST", f"{BASE}/messages/x/retry"),
    ):
        response = admin.client.request(method, path, headers=admin.headers("user"))
        assert response.status_code == 403
        assert response.json()["detail"] == "the dead-letter API needs the admin role"


def test_unknown_ids_are_404(admin: AdminHarness) -> None:
    headers = admin.headers()
    for method, suffix, body in (
        ("GET", "", None),
        ("POST", "/retry", None),
        ("POST", "/discard", {"reason": "r"}),
    ):
        response = admin.client.request(
            method, f"{BASE}/messages/missing{suffix}", headers=headers, json=body
        )
        assert response.status_code == 404
        assert response.json() == {"detail": "no dead letter with id 'missing'"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"offset": -1}, "offset"),
        ({"topic": ""}, "topic"),
        ({"stauts": "retried"}, "stauts"),
    ],
)
def test_invalid_filters_are_422_naming_the_field(
    admin: AdminHarness, params: dict[str, Any], field: str
) -> None:
    response = admin.client.get(f"{BASE}/messages", params=params, headers=admin.headers())
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith(f"invalid request: {field}:")
    assert body["errors"][0]["field"] == field


async def test_list_filters_and_pages_newest_first(
    admin: AdminHarness, make_report: ReportFactory
) -> None:
    for offset in range(3):
        await _stored(admin, make_report(headers={"x-original-offset": str(offset)}))
        admin.parts.clock.advance(1)
    other = await _stored(admin, make_report(headers={"x-consumer-group": "other"}))
    headers = admin.headers()

    everything = admin.client.get(f"{BASE}/messages", headers=headers).json()
    assert everything["total"] == 4
    assert everything["items"][0]["id"] == other.id
    page = admin.client.get(
        f"{BASE}/messages",
        params={"consumer_group": "notifier", "limit": 2, "offset": 1, "status": "scheduled"},
        headers=headers,
    ).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [item["offset"] for item in page["items"]] == [1, 0]
    none = admin.client.get(
        f"{BASE}/messages", params={"execution_id": "nope"}, headers=headers
    ).json()
    assert none == {"items": [], "total": 0, "limit": 50, "offset": 0}


async def test_inspect_shows_everything_with_credentials_masked(
    admin: AdminHarness, make_report: ReportFactory
) -> None:
    report = make_report(
        headers={"authorization": "Bearer secret-token"},
        value=b'{"event_id": "e-9", "payload": {"secret": "hush", "url": "http://x"}}',
    )
    record = await _stored(admin, report)
    body = admin.client.get(f"{BASE}/messages/{record.id}", headers=admin.headers()).json()
    assert body["status"] == "scheduled"
    assert body["headers"]["authorization"] == "***"
    assert body["headers"]["x-consumer-group"] == "notifier"
    assert body["payload"]["payload"] == {"secret": "***", "url": "http://x"}
    assert body["payload_encoding"] == "json"
    assert body["key"] == "x-1"
    assert body["policy"]["max_attempts"] == 3
    assert body["attempts"][0]["error"] == {"type": "builtins.RuntimeError", "message": "boom"}
    assert body["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert "hush" not in str(body)
    assert "value" not in body


async def test_retry_now_schedules_and_wakes_the_scheduler(
    admin: AdminHarness, make_report: ReportFactory
) -> None:
    record = await _stored(admin, make_report())
    admin.parts.clock.advance(30)
    response = admin.client.post(f"{BASE}/messages/{record.id}/retry", headers=admin.headers())
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "scheduled"
    assert datetime.fromisoformat(body["next_attempt_at"]) == admin.parts.clock()
    assert body["admin_actions"][0]["by"] == "user-admin"
    assert admin.woken == [True]


async def test_discard_then_conflicts(admin: AdminHarness, make_report: ReportFactory) -> None:
    record = await _stored(admin, make_report())
    url = f"{BASE}/messages/{record.id}/discard"
    missing_reason = admin.client.post(url, json={"reason": ""}, headers=admin.headers())
    assert missing_reason.status_code == 422
    done = admin.client.post(url, json={"reason": "known bad input"}, headers=admin.headers())
    assert done.status_code == 200
    assert done.json()["discard_reason"] == "discarded by an admin: known bad input"
    again = admin.client.post(url, json={"reason": "twice"}, headers=admin.headers())
    assert again.status_code == 409
    assert "already discarded" in again.json()["detail"]
    assert admin.parts.store.records[record.id].status is Status.DISCARDED


def test_malformed_json_is_400(admin: AdminHarness) -> None:
    response = admin.client.post(
        f"{BASE}/messages/x/discard",
        content=b"{oops",
        headers={**admin.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed JSON body")


async def test_stats_count_by_status_topic_and_group(
    admin: AdminHarness, make_report: ReportFactory
) -> None:
    a = await _stored(admin, make_report())
    await _stored(admin, make_report(headers={"x-original-offset": "1"}))
    await _stored(
        admin,
        make_report(headers={"x-original-topic": "notification_events", "x-consumer-group": "g"}),
    )
    await admin.parts.service.discard(a.id, "x", "admin")
    stats = admin.client.get(f"{BASE}/stats", headers=admin.headers()).json()
    assert stats["total"] == 3
    assert stats["by_status"] == {"scheduled": 2, "retrying": 0, "retried": 0, "discarded": 1}
    assert stats["by_topic"]["execution_events"] == {
        "total": 2,
        "by_status": {"scheduled": 1, "discarded": 1},
    }
    assert stats["by_consumer_group"]["g"]["total"] == 1


def test_a_store_that_is_down_is_503(admin: AdminHarness) -> None:
    admin.parts.store.down = True
    response = admin.client.get(f"{BASE}/stats", headers=admin.headers())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_openapi_tags_the_admin_routes(admin: AdminHarness) -> None:
    spec = admin.client.get("/openapi.json").json()
    tags = {
        tag
        for path, item in spec["paths"].items()
        if path.startswith(BASE)
        for operation in item.values()
        for tag in operation["tags"]
    }
    assert tags == {"dead letters"}
