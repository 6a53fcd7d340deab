"""The event store: every domain event once (unique ``event_id``), with its trace context.

Written in batches by the archiver; read by replay sessions, which use the stored span context
to link each replayed message back to the original trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from integr8scode_events import tracing as t
from integr8scode_events.envelope import EventEnvelope
from integr8scode_events.errors import EventsError
from integr8scode_events.trace_context import StoredTraceContext

_DUPLICATE_KEY = 11000
COLLECTION = "events"
SUPERSEDED_INDEXES = frozenset(
    f"{first}_1_occurred_at_1" for first in ("execution_id", "event_type", "user_id")
)


def stored_document(
    event: EventEnvelope,
    *,
    topic: str,
    partition: int,
    offset: int,
    headers: Mapping[str, str],
) -> dict[str, Any]:
    """The document stored for one consumed event."""
    ctx = StoredTraceContext.from_headers(headers)
    doc = event.model_dump(mode="json")
    doc["occurred_at"] = event.occurred_at  # kept a date so time-range filters use the index
    doc["kafka"] = {"topic": topic, "partition": partition, "offset": offset}
    doc["trace"] = {**ctx.fields(), "trace_id": ctx.trace_id, "span_id": ctx.span_id}
    doc["stored_at"] = datetime.now(UTC)
    return doc


class EventStoreWriter:
    """Batched, idempotent inserts into the event store."""

    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        *,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._collection = collection
        self._tracer = t.tracer(tracer_provider)

    @classmethod
    def in_database(
        cls, client: AsyncMongoClient[dict[str, Any]], database: str, **kwargs: Any
    ) -> EventStoreWriter:
        return cls(client[database][COLLECTION], **kwargs)

    async def ensure_indexes(self) -> None:
        """Unique ``event_id``, and the lookups replays filter by, each in the replay's order
        (``occurred_at``, ``event_id``): a page, a preview or a capped count is then one
        index range, whatever the history (on the local FerretDB too: docs/decisions.md,
        "FerretDB: sort, limit and count in PostgreSQL"). The time-only one serves a replay
        filtered by time alone."""
        try:
            await self._collection.create_index([("event_id", ASCENDING)], unique=True)
            for first in ("execution_id", "event_type", "user_id"):
                await self._collection.create_index(
                    [(first, ASCENDING), ("occurred_at", ASCENDING), ("event_id", ASCENDING)]
                )
            await self._collection.create_index(
                [("occurred_at", ASCENDING), ("event_id", ASCENDING)]
            )
            # The (…, occurred_at) indexes these replaced: prefixes of the new ones, so they
            # only cost the archiver's inserts.
            existing = await self._collection.index_information()
            for old in SUPERSEDED_INDEXES & existing.keys():
                await self._collection.drop_index(old)
        except PyMongoError as exc:
            raise EventsError(f"could not index the event store: {exc}") from exc

    async def write_batch(self, documents: Sequence[dict[str, Any]]) -> int:
        """Insert the batch; events already stored are skipped. Returns how many were new."""
        if not documents:
            return 0
        attributes: dict[str, Any] = {
            t.EVENTS_BATCH_COUNT: len(documents),
            "db.system.name": "mongodb",
            "db.collection.name": self._collection.name,
        }
        if len(documents) == 1:
            only = documents[0]
            attributes[t.EVENT_ID] = only["event_id"]
            attributes[t.EVENT_TYPE] = only["event_type"]
            if only.get("execution_id"):
                attributes[t.EXECUTION_ID] = only["execution_id"]
        with self._tracer.start_as_current_span(
            "event_store.write", kind=SpanKind.INTERNAL, attributes=attributes
        ) as span:
            inserted = await self._insert(documents)
            span.set_attribute("events.batch.inserted", inserted)
            span.set_attribute("events.batch.duplicates", len(documents) - inserted)
            return inserted

    async def _insert(self, documents: Sequence[dict[str, Any]]) -> int:
        try:
            result = await self._collection.insert_many(list(documents), ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != _DUPLICATE_KEY for err in errors):
                raise EventsError(f"event store write failed: {errors[:3]}") from exc
            return int(exc.details.get("nInserted", len(documents) - len(errors)))
        except PyMongoError as exc:
            raise EventsError(f"event store write failed: {exc}") from exc
        return len(result.inserted_ids)
