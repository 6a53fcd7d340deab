"""``EventSource`` on the event store (collection ``events``, written by the archiver)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ExecutionTimeout, PyMongoError

from integr8scode_event_replay.domain.errors import QueryTimeoutError, StoreUnavailableError
from integr8scode_event_replay.domain.messages import StoredEvent
from integr8scode_event_replay.domain.ports import EventCount
from integr8scode_event_replay.domain.sessions import Cursor
from integr8scode_event_replay.domain.spec import ReplayFilters
from integr8scode_events import StoredTraceContext

log = logging.getLogger(__name__)

ORDER = [("occurred_at", ASCENDING), ("event_id", ASCENDING)]
_COUNT_BATCH = 1_000
# The share of a bounded count's budget given to a server-side count before streaming instead.
_SERVER_COUNT_SHARE = 0.5


def events_query(filters: ReplayFilters, after: Cursor | None = None) -> dict[str, Any]:
    """The Mongo filter of ``filters``, continuing after ``after`` in (``occurred_at``,
    ``event_id``) order. Kept to plain equality, ``$in``, ranges and the keyset's ``$or`` on
    top-level fields: what the local FerretDB decides, sorts and limits in PostgreSQL
    (docs/decisions.md, "FerretDB: sort, limit and count in PostgreSQL")."""
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
    lower = filters.occurred_from
    if after is not None and (lower is None or after.occurred_at > lower):
        # Implied by the keyset's $or below, said as a range: the (…, occurred_at) index is
        # then read from the cursor on, not from its start (an OR bounds no index scan).
        lower = after.occurred_at
    if lower is not None:
        occurred["$gte"] = lower
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
        trace=StoredTraceContext.from_document(trace if isinstance(trace, Mapping) else {}),
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

    async def count_up_to(self, filters: ReplayFilters, limit: int, budget_s: float) -> EventCount:
        """A server-side count capped at ``limit`` first, with half the budget: the local
        FerretDB answers it in SQL without reading the events when it decides the filter
        (the indexed equalities and ranges ``events_query`` writes). A server-side count says
        nothing until it has finished, so when that half runs out the ids are streamed and
        counted for the rest of the budget, and a count cut short still says "at least n"."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        query = events_query(filters)
        try:
            async with asyncio.timeout(budget_s * _SERVER_COUNT_SHARE):
                n = await self._collection.count_documents(query, limit=limit)
            return EventCount(n, complete=n < limit)
        except TimeoutError:
            pass
        except PyMongoError as exc:
            raise StoreUnavailableError(f"event store unavailable: {exc}") from exc
        return await self._stream_count(query, limit, max(deadline - loop.time(), 1e-6))

    async def _stream_count(self, query: dict[str, Any], limit: int, budget_s: float) -> EventCount:
        """Streams the ids of matching events and counts them as they come. The server is
        told the budget too (``maxTimeMS``), so it stops scanning when the client stops
        waiting. The cap is applied here, not sent as the find's ``limit``: FerretDB 1.24 on
        PostgreSQL pushes a limit down and then answers MaxTimeMSExpired at once when
        ``maxTimeMS`` is set as well (its find cancels its own context when the limited scan
        ends)."""
        seen = 0
        cursor = self._collection.find(
            query,
            projection={"_id": 1},
            batch_size=min(_COUNT_BATCH, limit),
            max_time_ms=_ms(budget_s),
        )
        try:
            async with asyncio.timeout(budget_s):
                async for _ in cursor:
                    seen += 1
                    if seen >= limit:
                        break
        except (TimeoutError, ExecutionTimeout):
            return EventCount(seen, complete=False)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"event store unavailable: {exc}") from exc
        finally:
            await _close_quietly(cursor)
        return EventCount(seen, complete=seen < limit)

    async def page(
        self,
        filters: ReplayFilters,
        after: Cursor | None,
        limit: int,
        budget_s: float | None = None,
    ) -> Sequence[StoredEvent]:
        cursor = self._collection.find(events_query(filters, after)).sort(ORDER).limit(limit)
        if budget_s is not None:
            cursor = cursor.max_time_ms(_ms(budget_s))
        try:
            async with asyncio.timeout(budget_s):
                return [stored_event(doc) async for doc in cursor]
        except (TimeoutError, ExecutionTimeout) as exc:
            raise QueryTimeoutError(f"the event store did not answer within {budget_s} s") from exc
        except PyMongoError as exc:
            raise StoreUnavailableError(f"event store unavailable: {exc}") from exc
        finally:
            await _close_quietly(cursor)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


async def _close_quietly(cursor: Any) -> None:
    # Closing only frees the server's cursor; a failure here changes nothing for the caller.
    try:
        await cursor.close()
    except PyMongoError:
        log.debug("could not close an event store cursor", exc_info=True)
