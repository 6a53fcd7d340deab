"""Handle each event once per consumer, even when Kafka delivers it again.

A consumer *claims* an event id before handling it (a document with a unique ``_id`` and a
lease), marks it *done* afterwards, and *releases* it when the handler failed so a retry can
claim it again. A claim whose lease ran out (its holder crashed mid-handling) can be taken over,
so a crash never turns into a lost event.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_events import headers as h
from integr8scode_events.envelope import EventEnvelope
from integr8scode_events.errors import AlreadyBeingProcessedError, EventsError
from integr8scode_events.kafka.handlers import Handler, MessageContext

E = TypeVar("E", bound=EventEnvelope)

DUPLICATE_ATTRIBUTE = "event.duplicate"


class Claim(enum.Enum):
    NEW = "new"  # ours to handle
    DONE = "done"  # handled before: skip
    BUSY = "busy"  # another consumer holds a live lease


class ProcessedEvents(Protocol):
    """Where a consumer records which events it handled."""

    async def claim(self, consumer: str, key: str) -> Claim: ...

    async def complete(self, consumer: str, key: str) -> None: ...

    async def release(self, consumer: str, key: str) -> None: ...


class MongoProcessedEvents:
    """``ProcessedEvents`` in a Mongo collection (default ``processed_events``)."""

    def __init__(
        self, collection: AsyncCollection[dict[str, Any]], lease: timedelta = timedelta(minutes=5)
    ) -> None:
        self._collection = collection
        self._lease = lease

    @classmethod
    def in_database(
        cls, client: AsyncMongoClient[dict[str, Any]], database: str, **kwargs: Any
    ) -> MongoProcessedEvents:
        return cls(client[database]["processed_events"], **kwargs)

    async def ensure_indexes(self) -> None:
        """Index to find stale claims (``_id`` is already unique)."""
        await self._collection.create_index([("status", 1), ("lease_until", 1)])

    async def claim(self, consumer: str, key: str) -> Claim:
        now = datetime.now(UTC)
        doc_id = f"{consumer}:{key}"
        try:
            await self._collection.insert_one(
                {
                    "_id": doc_id,
                    "consumer": consumer,
                    "key": key,
                    "status": "processing",
                    "lease_until": now + self._lease,
                    "claimed_at": now,
                }
            )
        except DuplicateKeyError:
            pass
        except PyMongoError as exc:
            raise EventsError(f"could not claim {doc_id}: {exc}") from exc
        else:
            return Claim.NEW
        try:
            taken = await self._collection.find_one_and_update(
                {"_id": doc_id, "status": "processing", "lease_until": {"$lt": now}},
                {"$set": {"lease_until": now + self._lease, "claimed_at": now}},
                return_document=ReturnDocument.AFTER,
            )
            if taken is not None:
                return Claim.NEW
            existing = await self._collection.find_one({"_id": doc_id}, {"status": 1})
        except PyMongoError as exc:
            raise EventsError(f"could not claim {doc_id}: {exc}") from exc
        if existing is None:  # released between our insert and read: try once more
            return await self.claim(consumer, key)
        return Claim.DONE if existing.get("status") == "done" else Claim.BUSY

    async def complete(self, consumer: str, key: str) -> None:
        try:
            await self._collection.update_one(
                {"_id": f"{consumer}:{key}"},
                {"$set": {"status": "done", "completed_at": datetime.now(UTC)}},
            )
        except PyMongoError as exc:
            raise EventsError(f"could not mark {consumer}:{key} done: {exc}") from exc

    async def release(self, consumer: str, key: str) -> None:
        try:
            await self._collection.delete_one({"_id": f"{consumer}:{key}", "status": "processing"})
        except PyMongoError as exc:
            raise EventsError(f"could not release {consumer}:{key}: {exc}") from exc


def idempotency_key(event: EventEnvelope, ctx: MessageContext) -> str:
    """The event id; a replay that asks for re-processing gets a key of its own."""
    session = ctx.headers.get(h.REPLAY_SESSION)
    if session and ctx.headers.get(h.REPLAY_REPROCESS) == "true":
        return f"{event.event_id}:replay:{session}"
    return str(event.event_id)


def idempotent(
    store: ProcessedEvents, consumer: str, handler: Handler[E]
) -> Callable[[E, MessageContext], Awaitable[None]]:
    """Wrap ``handler`` so a redelivered event is skipped rather than applied twice."""

    async def once(event: E, ctx: MessageContext) -> None:
        key = idempotency_key(event, ctx)
        claim = await store.claim(consumer, key)
        if claim is Claim.DONE:
            ctx.span.set_attribute(DUPLICATE_ATTRIBUTE, True)
            return
        if claim is Claim.BUSY:
            raise AlreadyBeingProcessedError(f"event {key} is being handled by another consumer")
        try:
            await handler(event, ctx)
        except BaseException:
            await store.release(consumer, key)
            raise
        await store.complete(consumer, key)

    return once
