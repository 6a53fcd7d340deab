"""Delivery records in Mongo: collection ``notifications`` (written only by the notifier; the
API reads it for ``GET /api/v1/notifications``).

A record is created by a unique insert on ``_id`` (the deterministic notification id), so a
redelivered event finds the record of its first delivery. Later changes are updates by ``_id``
alone: one consumer group member handles one execution's events at a time (key = execution id),
and FerretDB only pushes ``_id`` filters down to an index.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_notifier.domain.errors import StoreUnavailableError
from integr8scode_notifier.domain.notifications import Channel, Delivery, DeliveryStatus

T = TypeVar("T")

COLLECTION = "notifications"


def to_document(delivery: Delivery) -> dict[str, Any]:
    return {
        "_id": delivery.id,
        "user_id": delivery.user_id,
        "execution_id": delivery.execution_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "idempotency_key": delivery.idempotency_key,
        "channel": delivery.channel.value,
        "target": delivery.target,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "error": delivery.error,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
        "delivered_at": delivery.delivered_at,
        "trace_id": delivery.trace_id,
        "final": delivery.final,
        "announced": delivery.announced,
    }


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def from_document(doc: dict[str, Any]) -> Delivery:
    created_at = _aware(doc["created_at"])
    updated_at = _aware(doc.get("updated_at")) or created_at
    assert created_at is not None  # noqa: S101 - written on insert
    assert updated_at is not None  # noqa: S101
    return Delivery(
        id=doc["_id"],
        user_id=doc["user_id"],
        execution_id=doc["execution_id"],
        event_id=doc["event_id"],
        event_type=doc["event_type"],
        idempotency_key=doc.get("idempotency_key", ""),
        channel=Channel(doc["channel"]),
        target=doc.get("target", ""),
        status=DeliveryStatus(doc["status"]),
        attempts=int(doc.get("attempts", 0)),
        created_at=created_at,
        updated_at=updated_at,
        last_status_code=doc.get("last_status_code"),
        error=doc.get("error"),
        delivered_at=_aware(doc.get("delivered_at")),
        trace_id=doc.get("trace_id"),
        final=bool(doc.get("final", False)),
        announced=bool(doc.get("announced", False)),
    )


class MongoDeliveryStore:
    """``DeliveryStore`` on the ``notifications`` collection."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection

    async def ensure_indexes(self) -> None:
        """The API lists a user's deliveries newest first, optionally of one execution."""
        await self._call(
            self._c.create_index(
                [("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"
            )
        )
        await self._call(self._c.create_index([("execution_id", ASCENDING)], name="execution"))

    async def open(self, delivery: Delivery) -> Delivery:
        try:
            await self._c.insert_one(to_document(delivery))
        except DuplicateKeyError:
            existing = await self._call(self._c.find_one({"_id": delivery.id}))
            if existing is None:  # removed in between (by hand): start over
                return await self.open(delivery)
            return from_document(existing)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"delivery store unavailable: {exc}") from exc
        return delivery

    async def get(self, delivery_id: str) -> Delivery | None:
        doc = await self._call(self._c.find_one({"_id": delivery_id}))
        return None if doc is None else from_document(doc)

    async def record_attempt(
        self, delivery_id: str, attempts: int, status_code: int | None, error: str | None
    ) -> None:
        await self._call(
            self._c.update_one(
                {"_id": delivery_id},
                {
                    "$set": {
                        "attempts": attempts,
                        "last_status_code": status_code,
                        "error": error,
                        "updated_at": datetime.now(UTC),
                    }
                },
            )
        )

    async def finish(self, delivery: Delivery) -> None:
        fields = to_document(delivery)
        for unchanged in ("_id", "user_id", "execution_id", "event_id", "created_at"):
            fields.pop(unchanged)
        await self._call(self._c.update_one({"_id": delivery.id}, {"$set": fields}))

    async def mark_announced(self, delivery_id: str) -> None:
        await self._call(self._c.update_one({"_id": delivery_id}, {"$set": {"announced": True}}))

    @staticmethod
    async def _call(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except PyMongoError as exc:
            raise StoreUnavailableError(f"delivery store unavailable: {exc}") from exc
