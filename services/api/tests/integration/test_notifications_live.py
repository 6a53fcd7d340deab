"""Notification settings and deliveries against the real FerretDB, through an in-process app:
what is stored (credentials sealed), what is answered (masked), ``rotate-secrets`` over stored
documents, and the listing of the notifier's records."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.stack import local_stack

from integr8scode_api.adapters.mongo_notifications import plaintext_of
from integr8scode_secrets import KeyRing, SecretBox

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
    # No credential in the clear: not the secret, not the Slack token, not the webhook query.
    for plaintext in (SECRET, "LIVETOKEN", "x=1"):
        assert plaintext not in repr(doc)
    assert doc["webhook"]["target"] == "https://example.com/hook?***"
    assert doc["slack"]["target"] == "https://hooks.slack.com/***"
    for sealed in (doc["webhook"]["url"], doc["webhook"]["secret"], doc["slack"]["webhook_url"]):
        assert set(sealed) == {"v", "kid", "ct"}
    assert isinstance(doc["updated_at"], datetime)
    # The default local key ring (no INTEGR8SCODE_SECRETS_KEYS) opens it to what was put.
    opened = plaintext_of(doc, SecretBox(live.settings().secrets.key_ring("local")))
    assert (opened.webhook_url, opened.webhook_secret, opened.slack_webhook_url) == (
        "https://example.com/hook?x=1",
        SECRET,
        SLACK_URL,
    )

    got = await client.get(SETTINGS, headers=headers)
    assert got.json() == put.json()
    assert got.json()["webhook"] == {"url": "https://example.com/hook?***", "has_secret": True}
    assert got.json()["slack"] == {"target": "https://hooks.slack.com/***"}

    cleared = await client.put(SETTINGS, json={"webhook": None}, headers=headers)
    assert cleared.json()["webhook"] is None
    assert cleared.json()["slack"] is None
    doc = await live.mongo[live.database]["notification_settings"].find_one({"_id": user_id})
    assert doc is not None
    assert (doc["webhook"], doc["slack"]) == (None, None)
    assert await live.mongo[live.database]["notification_settings"].count_documents({}) == 1


def _key() -> tuple[str, bytes]:
    return f"k{uuid.uuid4().hex[:6]}", os.urandom(32)


async def _rotate(env: dict[str, str]) -> tuple[int, str, str]:
    """``integr8scode-api rotate-secrets`` as an operator runs it: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "integr8scode_api",
        "rotate-secrets",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _ring_text(*keys: tuple[str, bytes]) -> str:
    return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in keys)


async def test_rotate_secrets_reseals_legacy_and_old_documents_under_the_new_key(
    live: LiveStack,
) -> None:
    old, new = _key(), _key()
    collection = live.mongo[live.database]["notification_settings"]
    at = datetime.now(UTC).replace(microsecond=0)
    old_box = SecretBox(KeyRing.of([old]))
    await collection.insert_many(
        [
            # Written before sealing existed: plaintext, no target.
            {
                "_id": "legacy",
                "webhook": {"url": "https://a.test/h?token=LEGACYQ", "secret": SECRET},
                "slack": {"webhook_url": SLACK_URL},
                "updated_at": at,
            },
            {
                "_id": "old-key",
                "webhook": {
                    "target": "https://b.test/h",
                    "url": old_box.seal("https://b.test/h", owner="old-key", field="webhook.url"),
                    "secret": None,
                },
                "slack": None,
                "updated_at": at,
            },
            {"_id": "nothing", "webhook": None, "slack": None, "updated_at": None},
        ]
    )
    stack = local_stack()
    env = {
        **os.environ,
        "MONGO_URL": stack.mongo_url,
        "MONGO_DATABASE": live.database,
        "INTEGR8SCODE_SECRETS_KEYS": _ring_text(new, old),
        "DEPLOYMENT_ENVIRONMENT": "production",
        "API_JWT_SECRET": "j" * 40,
        "API_ADMIN_PASSWORD": "not-the-default-password",
        "OTEL_SDK_DISABLED": "true",
    }
    first = await _rotate(env)
    assert first[0] == 0, first[2]
    assert f"re-sealed under key '{new[0]}': 2; already current: 1" in first[1]
    assert "failed: 0" in first[1]

    new_only = SecretBox(KeyRing.of([new]))  # the old key can be dropped now
    docs = {doc["_id"]: doc async for doc in collection.find({})}
    assert "LEGACYQ" not in repr(docs)
    assert SECRET not in repr(docs)
    assert "T9/B9" not in repr(docs)
    assert docs["legacy"]["webhook"]["target"] == "https://a.test/h?***"
    # A rotation is not a change of settings (this client reads naive UTC datetimes).
    assert docs["legacy"]["updated_at"].replace(tzinfo=UTC) == at
    legacy = plaintext_of(docs["legacy"], new_only)
    assert (legacy.webhook_url, legacy.webhook_secret, legacy.slack_webhook_url) == (
        "https://a.test/h?token=LEGACYQ",
        SECRET,
        SLACK_URL,
    )
    assert plaintext_of(docs["old-key"], new_only).webhook_url == "https://b.test/h"

    again = await _rotate(env)
    assert again[0] == 0, again[2]
    assert "re-sealed under key" in again[1]
    assert ": 0; already current: 3" in again[1]

    # A document sealed under a key no longer in the ring is reported, by user id, and fails
    # the command; the others are still done.
    stray = SecretBox(KeyRing.of([("gone", os.urandom(32))]))
    await collection.insert_one(
        {
            "_id": "stray",
            "webhook": None,
            "slack": {"target": "x", "webhook_url": stray.seal("u", owner="stray", field="f")},
            "updated_at": at,
        }
    )
    failing = await _rotate(env)
    assert failing[0] == 1
    assert "failed: 1" in failing[1]
    assert "user stray: slack.webhook_url: sealed under key id 'gone'" in failing[1]


def test_rotate_secrets_refuses_to_run_without_a_key_ring_outside_local() -> None:
    env = {k: v for k, v in os.environ.items() if k != "INTEGR8SCODE_SECRETS_KEYS"}
    env.update(
        DEPLOYMENT_ENVIRONMENT="production",
        API_JWT_SECRET="j" * 40,
        API_ADMIN_PASSWORD="not-the-default-password",
        OTEL_SDK_DISABLED="true",
    )
    result = subprocess.run(
        [sys.executable, "-m", "integr8scode_api", "rotate-secrets"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "INTEGR8SCODE_SECRETS_KEYS must be set in environment 'production'" in result.stderr


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
