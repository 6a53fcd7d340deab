"""A redelivered event is not applied twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pymongo import AsyncMongoClient
from tests.kafka_support import running, sample_event
from tests.polling import eventually

from integr8scode_events import ExecutionRequested
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    HandlerRegistry,
    KafkaSettings,
    MessageContext,
    MongoProcessedEvents,
    idempotent,
)
from integr8scode_events.kafka.idempotency import Claim


async def test_same_event_delivered_twice_is_handled_once(
    kafka_settings: KafkaSettings,
    new_topic: Callable[[], Any],
    publisher: EventPublisher,
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    topic = await new_topic()
    collection = mongo["integr8scode_test"][f"processed_{uuid.uuid4().hex[:6]}"]
    store = MongoProcessedEvents(collection)
    await store.ensure_indexes()
    applied: list[str] = []
    seen_offsets: list[int] = []

    async def apply(event: ExecutionRequested, ctx: MessageContext) -> None:
        applied.append(str(event.event_id))

    async def observe(event: ExecutionRequested, ctx: MessageContext) -> None:
        seen_offsets.append(ctx.offset)
        await idempotent(store, "it-consumer", apply)(event, ctx)

    runner = ConsumerRunner(
        settings=kafka_settings,
        group_id=f"it-idem-{uuid.uuid4().hex[:6]}",
        topics=[topic],
        publisher=publisher,
        handlers=HandlerRegistry().on(ExecutionRequested, observe),
    )
    event = sample_event()
    try:
        async with running(runner):
            for _ in range(3):  # the same envelope, three deliveries
                await publisher.publish(event, topic=topic)

            async def all_seen() -> bool:
                return seen_offsets == [0, 1, 2]

            await eventually(all_seen, timeout_s=30, what="three deliveries seen")
        assert applied == [str(event.event_id)]
        assert await store.claim("it-consumer", str(event.event_id)) is Claim.DONE
        assert await store.claim("another-consumer", str(event.event_id)) is Claim.NEW
    finally:
        await collection.drop()
