"""``EventSource`` on the event store (collection ``events``, written by the archiver)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from integr8scode_event_replay.domain.errors import StoreUnavailableError
from integr8scode_event_replay.domain.messages import StoredEvent
from integr8scode_event_replay.domain.sessions import Cursor
from integr8scode_event_replay.domain.spec import ReplayFilters

ORDER = [("occurred_at", ASCENDING), ("event_id", ASCENDING)]


def events_query(filters: ReplayFilters, after: Cursor | None = None) -> dict[str, Any]:
    """The Mongo filter of ``filters``, continuing after ``after`` in (``occurred_at``,
    ``event_id``) order. Kept to plain equality, ``$in`` and ranges: FerretDB evaluates every
    one of them (it pushes none down), so simple is also fast."""
    query: dict[str, Any] = {}
    if len(filters.event_types) == 1:
        query["event_type"] = filters.event_types[0]
    elif filters.event_types:
        query["event_type"] = {"$in": list(filters.event_types)}
    if filters.execution_id is not None:
        query["execution_id"] = filters.execution_id
    if filters.user_id is not None:
        query["user_id"] = filters.user_id
    occurred: dict[str, datetime] = {}
    if filters.occurred_from is not None:
        occurred["$gte"] = filters.occurred_from
    if filters.occurred_to is not None:
        occurred["$lt"] = filters.occurred_to
    if occurred:
        query["occurred_at"] = occurred
    if after is not None:
        query["$or"] = [
            {"occurred_at": {"$gt": after.occurred_at}},
            {"occurred_at": after.occurred_at, "event_id": {"$gt": after.event_id}},
        ]
    return query


def stored_event(document: Mapping[str, Any]) -> StoredEvent:
    """A store document as the domain sees it."""
    occurred_at = document["occurred_at"]
    if isinstance(occurred_at, str):  # a document written by hand or an old writer
        occurred_at = datetime.fromisoformat(occurred_at)
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    trace = document.get("trace") or {}
    return StoredEvent(
        event_id=str(document["event_id"]),
        event_type=str(document.get("event_type")),
        occurred_at=occurred_at,
        execution_id=document.get("execution_id"),
        traceparent=trace.get("traceparent") if isinstance(trace, Mapping) else None,
        document=document,
    )


class MongoEventSource:
    """Reads the event store; Mongo failures become ``StoreUnavailableError``."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._collection = collection

    async def count(self, filters: ReplayFilters) -> int:
        try:
            return await self._collection.count_documents(events_query(filters))
        except PyMongoError as exc:
            raise StoreUnavailableError(f"event store unavailable: {exc}") from exc

    async def page(
        self, filters: ReplayFilters, after: Cursor | None, limit: int
    ) -> Sequence[StoredEvent]:
        try:
            cursor = self._collection.find(events_query(filters, after)).sort(ORDER).limit(limit)
            return [stored_event(doc) async for doc in cursor]
        except PyMongoError as exc:
            raise StoreUnavailableError(f"event store unavailable: {exc}") from exc
