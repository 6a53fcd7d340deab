"""The delivery store on the local stack's FerretDB: unique open, updates by id, indexes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from integr8scode_notifier.adapters.mongo_deliveries import COLLECTION, MongoDeliveryStore
from integr8scode_notifier.domain.errors import StoreUnavailableError
from integr8scode_notifier.domain.notifications import Channel, Delivery, DeliveryStatus

Db = AsyncDatabase[dict[str, Any]]


def _delivery(**changes: Any) -> Delivery:
    now = datetime.now(UTC).replace(microsecond=0)
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "user_id": "user-1",
        "execution_id": "exec-1",
        "event_id": str(uuid.uuid4()),
        "event_type": "execution.completed",
        "idempotency_key": "key-1",
        "channel": Channel.WEBHOOK,
        "target": "https://a.test/hook",
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "trace_id": "ab" * 16,
    }
    return Delivery(**{**fields, **changes})


async def test_open_inserts_once_and_then_returns_the_stored_record(database: Db) -> None:
    store = MongoDeliveryStore(database[COLLECTION])
    first = _delivery()
    assert await store.open(first) == first
    stored = await store.get(first.id)
    assert stored == first

    finished = first.finished(
        DeliveryStatus.DELIVERED,
        attempts=2,
        at=datetime.now(UTC).replace(microsecond=0),
        status_code=200,
        error=None,
        final=True,
    )
    await store.finish(finished)
    # A redelivery opens the same id with a fresh pending record: it gets the stored outcome.
    again = await store.open(_delivery(id=first.id, trace_id="cd" * 16))
    assert again.status is DeliveryStatus.DELIVERED
    assert again.settled
    assert again.attempts == 2
    assert again.last_status_code == 200
    assert again.delivered_at == finished.delivered_at
    assert again.trace_id == "ab" * 16
    assert not again.announced
    await store.mark_announced(first.id)
    announced = await store.get(first.id)
    assert announced is not None
    assert announced.announced
    assert await database[COLLECTION].count_documents({}) == 1


async def test_attempts_are_recorded_while_the_status_stays(database: Db) -> None:
    store = MongoDeliveryStore(database[COLLECTION])
    delivery = await store.open(_delivery(channel=Channel.SLACK, target="https://h.test/***"))
    await store.record_attempt(delivery.id, 1, 503, "HTTP 503: busy")
    doc = await database[COLLECTION].find_one({"_id": delivery.id})
    assert doc is not None
    assert doc["status"] == "pending"
    assert (doc["attempts"], doc["last_status_code"], doc["error"]) == (1, 503, "HTTP 503: busy")
    assert doc["channel"] == "slack"
    assert doc["created_at"].tzinfo is not None


async def test_indexes_for_the_api_listing_exist(database: Db) -> None:
    store = MongoDeliveryStore(database[COLLECTION])
    await store.ensure_indexes()
    await store.ensure_indexes()  # idempotent
    names = {index["name"] async for index in await database[COLLECTION].list_indexes()}
    assert {"user_created", "execution"} <= names


async def test_an_unreachable_store_raises_its_own_error() -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:1", serverSelectionTimeoutMS=200, connect=False
    )
    try:
        store = MongoDeliveryStore(client["x"][COLLECTION])
        with pytest.raises(StoreUnavailableError):
            await store.open(_delivery())
        with pytest.raises(StoreUnavailableError):
            await store.finish(_delivery())
    finally:
        await client.close()
