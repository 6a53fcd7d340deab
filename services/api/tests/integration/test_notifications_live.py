"""Notification settings and deliveries against the real FerretDB, through an in-process app:
what is stored (secrets included) and what is answered (secrets masked), and the listing of
the notifier's records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import LiveStack

SETTINGS, LIST = "/api/v1/notifications/settings", "/api/v1/notifications"
SECRET = "live-secret-0123456789"
SLACK_URL = "https://hooks.slack.com/services/T9/B9/LIVETOKEN"


async def _login(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    name = f"n{uuid.uuid4().hex[:10]}"
    created = await client.post(
        "/api/v1/auth/register", json={"username": name, "password": "Sturdy-Lantern-41"}
    )
    assert created.status_code == 202, created.text
    login = await client.post(
        "/api/v1/auth/login", json={"username": name, "password": "Sturdy-Lantern-41"}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    return (await client.get("/api/v1/auth/me", headers=headers)).json()["id"], headers


async def test_settings_are_stored_whole_and_answered_masked(live: LiveStack) -> None:
    client = await live.client()
    user_id, headers = await _login(client)
    body = {
        "webhook": {"url": "https://example.com/hook?x=1", "secret": SECRET},
        "slack": {"webhook_url": SLACK_URL},
    }
    put = await client.put(SETTINGS, json=body, headers=headers)
    assert put.status_code == 200, put.text
    assert SECRET not in put.text
    assert "LIVETOKEN" not in put.text

    doc = await live.mongo[live.database]["notification_settings"].find_one({"_id": user_id})
    assert doc is not None
    assert doc["webhook"] == {"url": "https://example.com/hook?x=1", "secret": SECRET}
    assert doc["slack"] == {"webhook_url": SLACK_URL}
    assert isinstance(doc["updated_at"], datetime)

    got = await client.get(SETTINGS, headers=headers)
    assert got.json() == put.json()
    assert got.json()["webhook"]["has_secret"] is True
    assert got.json()["slack"] == {"target": "https://hooks.slack.com/***"}

    cleared = await client.put(SETTINGS, json={"webhook": None}, headers=headers)
    assert cleared.json()["webhook"] is None
    assert cleared.json()["slack"] is None
    doc = await live.mongo[live.database]["notification_settings"].find_one({"_id": user_id})
    assert doc is not None
    assert (doc["webhook"], doc["slack"]) == (None, None)
    assert await live.mongo[live.database]["notification_settings"].count_documents({}) == 1


async def test_http_slack_urls_need_the_setting(
    live: LiveStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"slack": {"webhook_url": "http://127.0.0.1:9/services/T/B/X"}}
    strict = await live.client()
    _, headers = await _login(strict)
    refused = await strict.put(SETTINGS, json=body, headers=headers)
    assert refused.status_code == 422
    assert "must be an https:// URL" in refused.json()["detail"]

    monkeypatch.setenv("API_NOTIFICATIONS_ALLOW_HTTP", "true")
    local = await live.client()
    _, headers = await _login(local)
    assert (await local.put(SETTINGS, json=body, headers=headers)).status_code == 200


def _record(user_id: str, execution_id: str, channel: str, age_s: int) -> dict[str, Any]:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=age_s)
    return {
        "_id": str(uuid.uuid4()),
        "user_id": user_id,
        "execution_id": execution_id,
        "event_id": str(uuid.uuid4()),
        "event_type": "execution.completed",
        "idempotency_key": "k",
        "channel": channel,
        "target": "https://example.com/hook",
        "status": "failed" if channel == "slack" else "delivered",
        "attempts": 3 if channel == "slack" else 1,
        "last_status_code": 503 if channel == "slack" else 200,
        "error": "HTTP 503: busy" if channel == "slack" else None,
        "created_at": at,
        "updated_at": at,
        "delivered_at": None if channel == "slack" else at,
        "trace_id": "cd" * 16,
        "final": channel != "slack",
        "announced": True,
    }


async def test_deliveries_list_the_callers_own_records(live: LiveStack) -> None:
    client = await live.client()
    user_id, headers = await _login(client)
    other_id, other_headers = await _login(client)
    notifications = live.mongo[live.database]["notifications"]
    await notifications.insert_many(
        [
            _record(user_id, "exec-1", "webhook", 30),
            _record(user_id, "exec-1", "slack", 20),
            _record(user_id, "exec-2", "webhook", 10),
            _record(other_id, "exec-9", "webhook", 5),
        ]
    )

    page = (await client.get(LIST, headers=headers)).json()
    assert page["total"] == 3
    assert [(i["execution_id"], i["channel"]) for i in page["items"]] == [
        ("exec-2", "webhook"),
        ("exec-1", "slack"),
        ("exec-1", "webhook"),
    ]
    failed = page["items"][1]
    assert failed["status"] == "failed"
    assert (failed["attempts"], failed["last_status_code"]) == (3, 503)
    assert failed["error"] == "HTTP 503: busy"
    assert failed["delivered_at"] is None
    assert "idempotency_key" not in failed

    filtered = await client.get(
        LIST, params={"execution_id": "exec-1", "limit": 1}, headers=headers
    )
    assert filtered.json()["total"] == 2
    assert [i["channel"] for i in filtered.json()["items"]] == ["slack"]

    others = (await client.get(LIST, headers=other_headers)).json()
    assert [i["execution_id"] for i in others["items"]] == ["exec-9"]
