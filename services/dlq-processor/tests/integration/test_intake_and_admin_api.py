"""Dead letters published by hand to ``dead_letter_queue`` (identity, odd payloads, masking) and
the admin API's answers to bad input — against the RUNNING dlq-processor."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_events import DEAD_LETTER_QUEUE
from integr8scode_events.kafka import EventPublisher

STACK = local_stack()
DLQ = STACK.services["dlq-processor"]


def _failure_headers(topic: str | None, group: str, offset: int) -> dict[str, str]:
    headers = {
        "x-consumer-group": group,
        "x-error-type": "builtins.ValueError",
        "x-error-message": "handcrafted failure",
        "x-retry-count": "0",
        "x-failed-at": datetime.now(UTC).isoformat(),
        "x-original-partition": "0",
        "x-original-offset": str(offset),
    }
    if topic is not None:
        headers["x-original-topic"] = topic
    return headers


async def _only_record_of_group(dlq: httpx.AsyncClient, group: str, count: int) -> dict[str, Any]:
    """The one record of ``group`` once it has applied ``count`` dead letters."""

    async def applied() -> dict[str, Any] | None:
        listed = (await dlq.get("/api/v1/dlq/messages", params={"consumer_group": group})).json()
        if listed["total"] != 1:
            return None
        detail = (await dlq.get(f"/api/v1/dlq/messages/{listed['items'][0]['id']}")).json()
        return detail if len(detail["dlq_positions"]) == count else None

    return await eventually(applied, timeout_s=30, what=f"{count} dead letters of {group}")


async def test_the_same_failure_dead_lettered_twice_is_one_record_with_the_bytes_kept(
    publisher: EventPublisher, topic: str, dlq: httpx.AsyncClient
) -> None:
    group = f"test-dlq-nobody-{uuid.uuid4().hex[:8]}"  # nobody consumes its retries
    value = b"\xff\x00 not text"
    headers = _failure_headers(topic, group, offset=41)
    for _ in range(2):
        await publisher.publish_raw(DEAD_LETTER_QUEUE.name, value, b"key-1", headers)

    record = await _only_record_of_group(dlq, group, count=2)
    assert record["topic"] == topic
    assert record["offset"] == 41
    assert record["payload_encoding"] == "base64"
    assert base64.b64decode(record["payload"]) == value
    assert record["key"] == "key-1"
    assert record["error"] == {"type": "builtins.ValueError", "message": "handcrafted failure"}
    assert record["event_id"] is None


async def test_a_dead_letter_without_its_origin_is_parked_and_secrets_are_masked(
    publisher: EventPublisher, dlq: httpx.AsyncClient
) -> None:
    group = f"test-dlq-nobody-{uuid.uuid4().hex[:8]}"
    value = json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "notification.requested",
            "execution_id": "exec-masked",
            "payload": {"webhook": {"url": "http://example.invalid", "secret": "s3cr3t"}},
        }
    ).encode()
    headers = {
        **_failure_headers(None, group, offset=7),
        "authorization": "Bearer abc",
        "x.odd$header": "kept",
    }
    await publisher.publish_raw(DEAD_LETTER_QUEUE.name, value, None, headers)

    record = await _only_record_of_group(dlq, group, count=1)
    assert record["status"] == "discarded"
    assert record["discard_reason"].startswith("not retryable: the dead letter has no")
    assert record["payload_encoding"] == "json"
    assert record["payload"]["payload"]["webhook"] == {
        "url": "http://example.invalid",
        "secret": "***",
    }
    assert record["headers"]["authorization"] == "***"
    assert record["headers"]["x.odd$header"] == "kept"
    assert record["event_type"] == "notification.requested"
    assert record["execution_id"] == "exec-masked"
    assert "s3cr3t" not in json.dumps(record)

    refused = await dlq.post(f"/api/v1/dlq/messages/{record['id']}/retry")
    assert refused.status_code == 409, refused.text
    assert "can't be retried" in refused.json()["detail"]


async def test_admin_api_answers_bad_input_with_clear_4xx(
    dlq: httpx.AsyncClient, user_token: str
) -> None:
    async with httpx.AsyncClient(base_url=DLQ, timeout=10) as anonymous:
        missing = await anonymous.get("/api/v1/dlq/messages")
        assert missing.status_code == 401
        assert "missing bearer token" in missing.json()["detail"]
        assert missing.headers["www-authenticate"] == "Bearer"

        garbage = await anonymous.get(
            "/api/v1/dlq/stats", headers={"Authorization": "Bearer not-a-token"}
        )
        assert garbage.status_code == 401
        assert garbage.json()["detail"] == "invalid access token"

        now = datetime.now(UTC)
        forged = jwt.encode(
            {
                "sub": "x",
                "role": "admin",
                "iat": now,
                "exp": now + timedelta(minutes=5),
                "jti": "j",
            },
            "another-secret-that-is-long-enough-for-hs256",
            algorithm="HS256",
        )
        wrong_key = await anonymous.get(
            "/api/v1/dlq/stats", headers={"Authorization": f"Bearer {forged}"}
        )
        assert wrong_key.status_code == 401

        not_admin = await anonymous.get(
            "/api/v1/dlq/messages", headers={"Authorization": f"Bearer {user_token}"}
        )
        assert not_admin.status_code == 403
        assert "admin role" in not_admin.json()["detail"]

    unknown = "0" * 32
    for response in (
        await dlq.get(f"/api/v1/dlq/messages/{unknown}"),
        await dlq.post(f"/api/v1/dlq/messages/{unknown}/retry"),
        await dlq.post(f"/api/v1/dlq/messages/{unknown}/discard", json={"reason": "gone"}),
    ):
        assert response.status_code == 404, response.text
        assert unknown in response.json()["detail"]

    bad_status = await dlq.get("/api/v1/dlq/messages", params={"status": "lost"})
    assert bad_status.status_code == 422
    assert bad_status.json()["detail"].startswith("invalid request: status:")
    assert "'scheduled'" in bad_status.json()["detail"]

    for params in ({"limit": "0"}, {"limit": "201"}, {"offset": "-1"}, {"stauts": "retried"}):
        response = await dlq.get("/api/v1/dlq/messages", params=params)
        assert response.status_code == 422, (params, response.text)

    no_reason = await dlq.post(f"/api/v1/dlq/messages/{unknown}/discard", json={})
    assert no_reason.status_code == 422
    assert "reason" in no_reason.json()["detail"]
    malformed = await dlq.post(
        f"/api/v1/dlq/messages/{unknown}/discard",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
