"""Batched, idempotent writes into the event store, with each event's trace context."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from tests.kafka_support import sample_event
from tests.stack import local_stack

from integr8scode_event_replay.adapters.event_store import EventStoreWriter, stored_document


@pytest.fixture
async def mongo() -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        local_stack().mongo_url, serverSelectionTimeoutMS=5000
    )
    try:
        yield client
    finally:
        await client.close()


async def test_batch_insert_skips_events_already_stored(
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    collection = mongo["integr8scode_test"][f"events_{uuid.uuid4().hex[:6]}"]
    writer = EventStoreWriter(collection)
    await writer.ensure_indexes()
    events = [sample_event() for _ in range(5)]
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    docs = [
        stored_document(e, topic="t", partition=0, offset=i, headers={"traceparent": traceparent})
        for i, e in enumerate(events)
    ]
    try:
        assert await writer.write_batch(docs[:3]) == 3
        assert await writer.write_batch(docs) == 2  # the first three are already there
        assert await collection.count_documents({}) == 5
        stored = await collection.find_one({"event_id": str(events[4].event_id)})
        assert stored is not None
        assert stored["trace"]["traceparent"] == traceparent
        assert stored["trace"]["trace_id"] == traceparent.split("-")[1]
        assert stored["kafka"] == {"topic": "t", "partition": 0, "offset": 4}
        assert stored["payload"]["language"] == "python"
    finally:
        await collection.drop()


async def test_indexes_follow_the_replay_order_and_replace_the_old_ones(
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    collection = mongo["integr8scode_test"][f"events_{uuid.uuid4().hex[:6]}"]
    await collection.create_index([("event_type", 1), ("occurred_at", 1)])  # as before
    writer = EventStoreWriter(collection)
    try:
        await writer.ensure_indexes()
        await writer.ensure_indexes()  # at every start: nothing left to drop the second time
        keys = {
            name: [field for field, _ in info["key"]]
            for name, info in (await collection.index_information()).items()
        }
        assert "event_type_1_occurred_at_1" not in keys
        for first in ("execution_id", "event_type", "user_id"):
            assert keys[f"{first}_1_occurred_at_1_event_id_1"] == [
                first,
                "occurred_at",
                "event_id",
            ]
        assert keys["occurred_at_1_event_id_1"] == ["occurred_at", "event_id"]
        assert keys["event_id_1"] == ["event_id"]
    finally:
        await collection.drop()
