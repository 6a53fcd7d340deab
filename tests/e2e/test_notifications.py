"""Notifications end to end: a user's webhook and Slack receivers (local servers started by the
test) get exactly one message per execution, signed for the webhook; the deliveries API lists
them; and the execution's one trace runs from the API request through the coordinator to the
notifier's deliveries and their outbound HTTP calls."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from pymongo import AsyncMongoClient

from integr8scode_mongo import MongoSettings
from integr8scode_secrets import is_sealed
from tests.e2e.client import ApiUser
from tests.e2e.notify_receivers import Answer, Received, RecordingReceiver, holds_for
from tests.jaeger import JaegerSpan, JaegerTrace, wait_for_trace
from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()
SETTINGS, DELIVERIES = "/api/v1/notifications/settings", "/api/v1/notifications"
SECRET = "e2e-webhook-secret-0123456789"
SLACK_PATH = "/services/T000E2E/B000E2E/E2ESLACKTOKEN"
HOOK_PATH = "/hook?token=E2EQUERYTOKEN"  # a credential in the query: never on a span
NOTIFIER = "notifier"
# The native stack's service logs (absent under Docker, where the check below is skipped).
LOGS = Path(os.environ.get("INTEGR8SCODE_RUN", Path(__file__).parents[2] / ".local")) / "logs"


def _verified(request: Received, secret: str) -> bool:
    """What a receiver does: HMAC-SHA256 over "<timestamp>.<raw body>", compared in constant
    time, with the timestamp no more than five minutes off."""
    timestamp = request.header("X-Integr8scode-Timestamp") or ""
    signature = request.header("X-Integr8scode-Signature") or ""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    return hmac.compare_digest(f"sha256={digest.hexdigest()}", signature)


async def _configure(user: ApiUser, webhook: RecordingReceiver, slack: RecordingReceiver) -> None:
    response = await user.http.put(
        SETTINGS,
        json={
            "webhook": {"url": webhook.url(HOOK_PATH), "secret": SECRET},
            "slack": {"webhook_url": slack.url(SLACK_PATH)},
        },
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    assert SECRET not in response.text
    assert "E2ESLACKTOKEN" not in response.text
    assert response.json()["webhook"]["has_secret"] is True


async def _deliveries(user: ApiUser, execution_id: str) -> list[dict[str, Any]]:
    response = await user.http.get(
        DELIVERIES, params={"execution_id": execution_id}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _has_ancestor(trace: JaegerTrace, span: JaegerSpan, ancestor: JaegerSpan) -> bool:
    current = span
    while current.parent_id:
        if current.parent_id == ancestor.span_id:
            return True
        current = trace.by_id(current.parent_id)
    return False


def _http_clients(trace: JaegerTrace, parent: JaegerSpan) -> list[JaegerSpan]:
    """The outbound HTTP calls under ``parent`` (its Mongo calls are CLIENT spans too)."""
    return [
        s
        for s in trace.children_of(parent)
        if s.kind == "client" and s.tag("http.request.method") is not None
    ]


def _notifier_complete(trace: JaegerTrace) -> bool:
    delivers = [s for s in trace.named("notification.deliver") if s.service == NOTIFIER]
    clients = [
        s
        for s in trace.spans
        if s.service == NOTIFIER and s.kind == "client" and s.tag("http.request.method")
    ]
    # Each service exports on its own schedule: wait for every span the test looks at,
    # including the parent (the coordinator's publish) of the notifier's consume.
    names = set(trace.names())
    ids = {s.span_id for s in trace.spans}
    consumes = [s for s in trace.named("kafka.consume") if s.service == NOTIFIER]
    return (
        len(delivers) >= 2
        and len(clients) >= 2
        and {"sandbox.run", "saga.step", "publish execution_events"} <= names
        and bool(consumes)
        and all(s.parent_id in ids for s in consumes)
    )


@pytest.mark.contract
async def test_both_channels_get_one_signed_message_listed_and_traced(user: ApiUser) -> None:
    async with RecordingReceiver() as webhook, RecordingReceiver() as slack:
        await _configure(user, webhook, slack)
        result = await user.run("print(sum(range(10)))")
        assert result["status"] == "completed"
        execution_id = result["execution_id"]

        (hook,) = await webhook.wait_for(1)
        (message,) = await slack.wait_for(1)

        async def both_delivered() -> list[dict[str, Any]] | None:
            items = await _deliveries(user, execution_id)
            delivered = [i for i in items if i["status"] == "delivered"]
            return items if len(delivered) == 2 else None

        listed = await eventually(both_delivered, timeout_s=30, what="both deliveries listed")

        async def still_one_each() -> bool:
            items = await _deliveries(user, execution_id)
            return len(items) == 2 and len(webhook.requests) == 1 and len(slack.requests) == 1

        await holds_for(still_one_each, duration_s=3)

    # The webhook: signed, identified, with the execution's summary.
    assert _verified(hook, SECRET)
    assert not _verified(hook, SECRET + "-wrong")
    assert hook.header("X-Integr8scode-Event") == "execution.completed"
    body = hook.json()
    execution = body["execution"]
    assert execution["execution_id"] == execution_id
    assert execution["status"] == "completed"
    assert execution["language"] == "python"
    assert execution["language_version"] == result["language_version"]
    assert execution["exit_code"] == 0
    assert execution["stdout_preview"] == "45\n"
    assert execution["duration_ms"] == result["resource_usage"]["wall_time_ms"]
    assert execution["url"].endswith(f"/api/v1/executions/{execution_id}")

    # Slack: the incoming-webhook protocol, a readable message.
    assert message.path == SLACK_PATH
    slack_body = message.json()
    assert slack_body["text"].startswith(":white_check_mark:")
    assert execution_id in slack_body["text"]
    assert f"python {result['language_version']}" in slack_body["text"]
    assert slack_body["blocks"][0]["type"] == "header"

    # The deliveries API: one record per channel, delivered at the first attempt.
    by_channel = {item["channel"]: item for item in listed}
    assert set(by_channel) == {"webhook", "slack"}
    assert by_channel["webhook"]["notification_id"] == hook.header("X-Integr8scode-Delivery")
    for item in listed:
        assert item["attempts"] == 1
        assert item["last_status_code"] == 200
        assert item["error"] is None
        assert item["delivered_at"]
        assert item["trace_id"] == result["trace_id"]
    assert by_channel["slack"]["target"] == f"{slack.base_url}/***"

    trace = await wait_for_trace(
        STACK.jaeger_query, result["trace_id"], until=_notifier_complete, timeout_s=60
    )
    server = next(
        s
        for s in trace.spans
        if s.service == "integr8scode-backend" and s.kind == "server" and "/execute" in s.name
    )
    assert server.tag("execution.id") == execution_id
    assert any(s.service == "execution-coordinator" for s in trace.named("saga.step"))
    assert trace.one("sandbox.run").service == "execution-coordinator"

    consume = next(
        s
        for s in trace.named("kafka.consume")
        if s.service == NOTIFIER and s.tag("event.type") == "execution.completed"
    )
    assert consume.tag("messaging.consumer.group.name") == "notifier"
    assert consume.tag("notification.channels") == 2
    publish = trace.parent_of(consume)
    assert publish.service == "execution-coordinator"
    assert publish.name == "publish execution_events"

    delivers = {s.tag("notification.channel"): s for s in trace.named("notification.deliver")}
    assert set(delivers) == {"webhook", "slack"}
    for channel, deliver in delivers.items():
        assert deliver.service == NOTIFIER
        assert trace.parent_of(deliver) == consume
        assert deliver.tag("notification.id") == by_channel[channel]["notification_id"]
        (client,) = _http_clients(trace, deliver)
        assert client.service == NOTIFIER
        assert client.tag("http.response.status_code") == 200
        assert client.tag("http.request.method") == "POST"
    (slack_client,) = _http_clients(trace, delivers["slack"])
    assert "E2ESLACKTOKEN" not in str(slack_client.tags)
    (hook_client,) = _http_clients(trace, delivers["webhook"])
    assert str(hook_client.tag("url.full")).endswith("/hook?token=REDACTED")
    everything = str([s.tags for s in trace.spans])
    for credential in (SECRET, "E2ESLACKTOKEN", "E2EQUERYTOKEN"):
        assert credential not in everything
        for log in [*LOGS.glob("svc-*.log"), *LOGS.glob("ctr-*.log")]:  # native or containers
            assert credential not in log.read_text(errors="replace"), f"{credential} in {log}"


async def test_a_receiver_that_rejects_the_request_is_recorded_not_retried(
    user: ApiUser,
) -> None:
    async with RecordingReceiver((Answer(410, "gone"),)) as webhook:
        response = await user.http.put(
            SETTINGS, json={"webhook": {"url": webhook.url("/gone")}}, headers=user.headers
        )
        assert response.status_code == 200, response.text
        result = await user.run("print('x')")

        async def failed() -> dict[str, Any] | None:
            items = await _deliveries(user, result["execution_id"])
            return items[0] if items and items[0]["status"] == "failed" else None

        record = await eventually(failed, timeout_s=30, what="the failed delivery listed")
        await holds_for(lambda: _one_request(webhook), duration_s=2)

    assert record["channel"] == "webhook"
    assert record["attempts"] == 1
    assert record["last_status_code"] == 410
    assert record["error"] == "HTTP 410: gone"
    assert webhook.requests[0].header("X-Integr8scode-Signature") is None


async def _one_request(receiver: RecordingReceiver) -> bool:
    return len(receiver.requests) == 1


async def test_bad_settings_are_refused_with_a_reason(user: ApiUser) -> None:
    cases = [
        ({"webhook": {"url": "gopher://example.com/"}}, "webhook.url"),
        ({"webhook": {"url": "https://a:b@example.com/"}}, "user information"),
        ({"webhook": {"url": "https://example.com/", "secret": "short"}}, "webhook.secret"),
        ({"slack": {"webhook_url": "not a url"}}, "slack.webhook_url"),
    ]
    for body, reason in cases:
        response = await user.http.put(SETTINGS, json=body, headers=user.headers)
        assert response.status_code == 422, body
        assert reason in response.json()["detail"]
    unchanged = await user.http.get(SETTINGS, headers=user.headers)
    assert unchanged.json() == {"webhook": None, "slack": None, "updated_at": None}


async def test_a_failing_channel_goes_through_the_dead_letter_queue_and_only_it_is_redone(
    user: ApiUser,
) -> None:
    # Three 503s use up the notifier's in-process attempts; the message is dead-lettered, the
    # DLQ processor sends it back to the notifier's group, and the fourth attempt succeeds.
    unavailable = Answer(503, "maintenance")
    async with (
        RecordingReceiver((unavailable, unavailable, unavailable, Answer())) as webhook,
        RecordingReceiver() as slack,
    ):
        await _configure(user, webhook, slack)
        result = await user.run("print('retry me')")
        execution_id = result["execution_id"]

        async def webhook_delivered() -> list[dict[str, Any]] | None:
            items = await _deliveries(user, execution_id)
            hook = [i for i in items if i["channel"] == "webhook" and i["status"] == "delivered"]
            return items if hook else None

        listed = await eventually(webhook_delivered, timeout_s=90, what="the webhook redelivered")
        await holds_for(lambda: _counts(webhook, 4, slack, 1), duration_s=2)

    by_channel = {item["channel"]: item for item in listed}
    assert by_channel["webhook"]["attempts"] == 4  # cumulative across the redelivery
    assert by_channel["slack"]["attempts"] == 1  # delivered the first time, not sent again
    ids = {r.header("X-Integr8scode-Delivery") for r in webhook.requests}
    assert ids == {by_channel["webhook"]["notification_id"]}  # one notification, four attempts
    assert all(_verified(r, SECRET) for r in webhook.requests)


async def _counts(
    webhook: RecordingReceiver, webhook_count: int, slack: RecordingReceiver, slack_count: int
) -> bool:
    return len(webhook.requests) == webhook_count and len(slack.requests) == slack_count


async def test_stored_credentials_are_sealed_and_deliveries_still_signed(user: ApiUser) -> None:
    """Needs the api and the notifier of this branch, started with one key ring
    (INTEGR8SCODE_SECRETS_KEYS; `make up` generates it)."""
    user_id = jwt.decode(user.token, options={"verify_signature": False})["sub"]
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(STACK.mongo_url, tz_aware=True)
    try:
        async with RecordingReceiver() as webhook, RecordingReceiver() as slack:
            await _configure(user, webhook, slack)
            stored = await mongo[MongoSettings().database]["notification_settings"].find_one(
                {"_id": user_id}
            )
            assert stored is not None
            raw = repr(stored)
            for plaintext in (SECRET, "E2ESLACKTOKEN", "E2EQUERYTOKEN", "T000E2E"):
                assert plaintext not in raw, f"{plaintext} stored in the clear"
            for sealed in (
                stored["webhook"]["url"],
                stored["webhook"]["secret"],
                stored["slack"]["webhook_url"],
            ):
                assert is_sealed(sealed)
            shown = await user.http.get(SETTINGS, headers=user.headers)
            assert shown.json()["webhook"]["url"] == webhook.url("/hook?***")
            assert "E2EQUERYTOKEN" not in shown.text

            result = await user.run("print('sealed')")
            assert result["status"] == "completed"
            (hook,) = await webhook.wait_for(1)
            (message,) = await slack.wait_for(1)
    finally:
        await mongo.close()
    # The notifier opened all three: the URL with its query, the secret that signs, Slack's path.
    assert hook.path == HOOK_PATH
    assert _verified(hook, SECRET)
    assert hook.json()["execution"]["execution_id"] == result["execution_id"]
    assert message.path == SLACK_PATH
