"""A session interrupted by a shutdown resumes from its cursor when the service starts again:
the whole service (``create_app``, lifespan running) in-process against the local stack, with a
database, an archiver group and a target topic of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient
from tests.kafka_support import read_all
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_event_replay.adapters.event_store import EventStoreWriter, stored_document
from integr8scode_event_replay.app import create_app
from integr8scode_event_replay.config import Settings
from integr8scode_events import NotificationSent, ProducerInfo, decode_event
from integr8scode_events import headers as h
from integr8scode_events.payloads import NotificationPayload

STACK = local_stack()
SECRET = "integration-secret-long-enough-for-hs256"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def admin_headers() -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {
        "sub": "it-admin",
        "role": "admin",
        "iat": now,
        "exp": now + timedelta(minutes=10),
        "jti": uuid.uuid4().hex,
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, 'HS256')}"}


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name = f"replay_it_{uuid.uuid4().hex[:10]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(STACK.mongo_url)
    # The admin behind admin_headers(), as the api stores accounts (tokens are checked against
    # the account as it is now).
    await client[name]["users"].insert_one(
        {"_id": "it-admin", "username": "it-admin", "role": "admin", "token_generation": 0}
    )
    try:
        yield name
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
async def topic() -> AsyncIterator[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=STACK.kafka_bootstrap)
    await admin.start()
    name = f"replay-it-{uuid.uuid4().hex[:10]}"
    await admin.create_topics([NewTopic(name, 1, 1)])
    try:
        yield name
    finally:
        try:
            await admin.delete_topics([name])
        finally:
            await admin.close()


def settings(database: str, instance: str, group: str) -> Settings:
    return Settings.model_validate(
        {
            "instance_id": instance,
            "jwt_secret": SECRET,
            "kafka": {"bootstrap_servers": STACK.kafka_bootstrap},
            "mongo": {"url": STACK.mongo_url, "database": database},
            "telemetry": {"sdk_disabled": True},
            "archiver": {"group": group},
            "replay": {"recovery_interval_s": 0.5, "lease_s": 5, "stop_grace_s": 5},
        }
    )


async def seed(database: str, execution_id: str, count: int) -> list[NotificationSent]:
    """Events 1 s apart, written straight into this test's event store."""
    events = [
        NotificationSent(
            producer=ProducerInfo(service="it", version="0"),
            correlation_id=execution_id,
            execution_id=execution_id,
            user_id="it-user",
            occurred_at=T0 + timedelta(seconds=i),
            payload=NotificationPayload(
                notification_id=f"n{i}", channel="webhook", execution_status="completed", attempts=1
            ),
        )
        for i in range(count)
    ]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(STACK.mongo_url)
    try:
        writer = EventStoreWriter.in_database(client, database)
        await writer.ensure_indexes()
        await writer.write_batch(
            [
                stored_document(e, topic="t", partition=0, offset=i, headers={})
                for i, e in enumerate(events)
            ]
        )
    finally:
        await client.close()
    return events


async def test_a_session_stopped_with_the_service_resumes_from_its_cursor(
    database: str, topic: str
) -> None:
    execution_id = f"it-{uuid.uuid4().hex}"
    events = await seed(database, execution_id, 4)
    group = f"replay-it-archiver-{uuid.uuid4().hex[:8]}"
    headers = admin_headers()

    async with AsyncExitStack() as first:
        app = create_app(settings(database, "it-a", group))
        await first.enter_async_context(app.router.lifespan_context(app))
        http = await first.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a")
        )
        created = await http.post(
            "/api/v1/replay/sessions",
            json={
                "filters": {"execution_id": execution_id},
                "target": {"kind": "topic", "topic": topic},
                "speed": 1.0,  # real time: one event a second
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        sid = created.json()["id"]

        async def some_out() -> dict[str, Any] | None:
            body: dict[str, Any] = (
                await http.get(f"/api/v1/replay/sessions/{sid}", headers=headers)
            ).json()
            return body if body["published"] >= 1 else None

        await eventually(some_out, timeout_s=30, what="first event replayed")
    # The first service stopped (SIGTERM path: lifespan shutdown): the session is released.

    async with AsyncExitStack() as second:
        app = create_app(settings(database, "it-b", group))
        http = await second.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b")
        )
        released: dict[str, Any] = (
            await http.get(f"/api/v1/replay/sessions/{sid}", headers=headers)
        ).json()
        assert released["status"] == "running"
        assert released["owner"] is None
        assert 1 <= released["published"] < 4
        assert released["position"]["event_id"] == str(events[released["published"] - 1].event_id)

        await second.enter_async_context(app.router.lifespan_context(app))

        async def done() -> dict[str, Any] | None:
            body: dict[str, Any] = (
                await http.get(f"/api/v1/replay/sessions/{sid}", headers=headers)
            ).json()
            return body if body["status"] == "completed" else None

        finished = await eventually(done, timeout_s=30, what="resumed session completed")
    assert finished["published"] == 4
    records = await read_all(topic, 4)
    assert [decode_event(r.value).event_id for r in records] == [e.event_id for e in events]
    sessions = {dict(r.headers)[h.REPLAY_SESSION] for r in records}
    assert sessions == {sid.encode()}
