"""The RUNNING event-replay service's archiver (restart it after a code change): events
published to a domain topic end up in the event store with their Kafka position and producer
trace context, once each; replayed copies are not archived as new events. The tests publish
notification events for fresh execution ids: only the archiver consumes
``notification_events``, so nothing else reacts to them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from pymongo import AsyncMongoClient
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_events import NotificationFailed, NotificationSent, ProducerInfo
from integr8scode_events import headers as h
from integr8scode_events.kafka import EventPublisher, KafkaSettings
from integr8scode_events.payloads import NotificationPayload
from integr8scode_mongo import MongoSettings

STACK = local_stack()
REPLAY = STACK.services["event-replay"]
PRODUCER = ProducerInfo(service="event-replay-it", version="0")


@pytest.fixture(scope="module")
async def replay_running() -> str:
    """The running event-replay service, ready (its archiver consuming)."""

    async def ready() -> bool:
        async with httpx.AsyncClient(base_url=REPLAY, timeout=5) as http:
            return (await http.get("/health/ready")).status_code == 200

    await eventually(ready, timeout_s=30, what="event-replay ready on " + REPLAY)
    return REPLAY


@pytest.fixture
async def event_store() -> AsyncIterator[Any]:
    """The event store the running service writes (database from ``MongoSettings``)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    try:
        yield client[MongoSettings().database]["events"]
    finally:
        await client.close()


@pytest.fixture
def tracer_provider() -> TracerProvider:
    """A provider of the test's own (nothing exported): publishes get a real traceparent."""
    return TracerProvider()


@pytest.fixture
async def publisher(tracer_provider: TracerProvider) -> AsyncIterator[EventPublisher]:
    settings = KafkaSettings(bootstrap_servers=STACK.kafka_bootstrap)
    async with EventPublisher(settings, "event-replay-it", tracer_provider=tracer_provider) as pub:
        yield pub


def notification(execution_id: str, *, sent: bool = True) -> NotificationSent | NotificationFailed:
    payload = NotificationPayload(
        notification_id=uuid.uuid4().hex,
        channel="webhook",
        execution_status="completed",
        attempts=1,
        status_code=200 if sent else 500,
    )
    common: dict[str, Any] = {
        "producer": PRODUCER,
        "correlation_id": execution_id,
        "execution_id": execution_id,
        "user_id": f"it-user-{execution_id}",
        "payload": payload,
    }
    return NotificationSent(**common) if sent else NotificationFailed(**common)


async def stored_for(event_store: Any, execution_id: str, expected: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        docs = [d async for d in event_store.find({"execution_id": execution_id})]
        return docs if len(docs) >= expected else None

    return await eventually(enough, timeout_s=30, interval_s=0.5, what=f"{expected} archived")


async def test_published_events_are_archived_with_their_trace_context(
    replay_running: str,
    publisher: EventPublisher,
    tracer_provider: TracerProvider,
    event_store: Any,
) -> None:
    execution_id = f"it-{uuid.uuid4().hex}"
    events = [notification(execution_id), notification(execution_id, sent=False)]
    with tracer_provider.get_tracer("it").start_as_current_span("it.publish") as span:
        records = [await publisher.publish(event) for event in events]
    trace_id = f"{span.get_span_context().trace_id:032x}"

    docs = {d["event_id"]: d for d in await stored_for(event_store, execution_id, 2)}
    assert set(docs) == {str(e.event_id) for e in events}
    for event, record in zip(events, records, strict=True):
        doc = docs[str(event.event_id)]
        assert doc["event_type"] == event.event_type
        assert doc["kafka"] == {
            "topic": "notification_events",
            "partition": record.partition,
            "offset": record.offset,
        }
        assert doc["trace"]["trace_id"] == trace_id  # each publish's PRODUCER span is a child
        assert doc["trace"]["traceparent"].split("-")[1] == trace_id
        assert doc["occurred_at"].tzinfo is not None


async def test_the_same_event_twice_and_a_replayed_copy_are_stored_once(
    replay_running: str, publisher: EventPublisher, event_store: Any
) -> None:
    execution_id = f"it-{uuid.uuid4().hex}"
    event = notification(execution_id)
    await publisher.publish(event)
    await publisher.publish(event)
    # A replayed message with an id the store has never seen: still not archived (a replay is
    # a copy of an archived event, not a new one).
    copy = notification(execution_id)
    await publisher.publish(copy, extra_headers={h.REPLAY_SESSION: "it-session"})
    # Same key, same partition: once the sentinel is stored, everything before it was handled.
    sentinel = notification(execution_id, sent=False)
    await publisher.publish(sentinel)

    await stored_for(event_store, execution_id, 2)
    docs = [d async for d in event_store.find({"execution_id": execution_id})]
    expected = sorted([str(event.event_id), str(sentinel.event_id)])
    assert sorted(d["event_id"] for d in docs) == expected
