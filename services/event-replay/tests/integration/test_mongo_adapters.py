"""The Mongo adapters against the real FerretDB (a database of their own): the event source's
filters and cursor order, the session store's round trip, ownership, listing and take-over,
and the control store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tests.stack import local_stack

from integr8scode_event_replay.adapters.event_store import EventStoreWriter, stored_document
from integr8scode_event_replay.adapters.mongo_events import MongoEventSource
from integr8scode_event_replay.adapters.mongo_sessions import MongoControlStore, MongoSessionStore
from integr8scode_event_replay.domain.errors import OwnershipLostError, QueryTimeoutError
from integr8scode_event_replay.domain.sessions import (
    Cursor,
    PreviewItem,
    ReplaySession,
    SessionStatus,
)
from integr8scode_event_replay.domain.spec import (
    ReplayFilters,
    SessionSpec,
    Speed,
    Target,
)
from integr8scode_events import NotificationFailed, NotificationSent, ProducerInfo
from integr8scode_events.payloads import NotificationPayload

Db = AsyncDatabase[dict[str, Any]]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STACK = local_stack()


@pytest.fixture
async def scratch_db() -> AsyncIterator[Db]:
    """A database of its own, dropped after the test."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    name = f"replay_it_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


def event(
    execution_id: str, at: datetime, *, sent: bool = True, event_id: uuid.UUID | None = None
) -> NotificationSent | NotificationFailed:
    fields: dict[str, Any] = {
        "producer": ProducerInfo(service="it", version="0"),
        "correlation_id": execution_id,
        "execution_id": execution_id,
        "user_id": "it-user",
        "occurred_at": at,
        "payload": NotificationPayload(
            notification_id="n", channel="slack", execution_status="completed", attempts=1
        ),
    }
    if event_id is not None:
        fields["event_id"] = event_id
    return NotificationSent(**fields) if sent else NotificationFailed(**fields)


async def test_the_event_source_filters_and_pages_in_time_then_id_order(scratch_db: Db) -> None:
    writer = EventStoreWriter(scratch_db["events"])
    await writer.ensure_indexes()
    ids = sorted(uuid.uuid4() for _ in range(3))
    same_moment = [event("e1", T0 + timedelta(seconds=1), event_id=i) for i in reversed(ids)]
    events = [
        event("e1", T0),
        *same_moment,
        event("e1", T0 + timedelta(seconds=2), sent=False),
        event("e2", T0 + timedelta(seconds=3)),
    ]
    await writer.write_batch(
        [
            stored_document(e, topic="t", partition=0, offset=n, headers={})
            for n, e in enumerate(events)
        ]
    )
    source = MongoEventSource(scratch_db["events"])

    filters = ReplayFilters(execution_id="e1")
    assert await source.count(filters) == 5
    seen: list[str] = []
    cursor: Cursor | None = None
    while page := await source.page(filters, cursor, 2):
        seen.extend(stored.event_id for stored in page)
        cursor = page[-1].cursor
    assert seen == [str(events[0].event_id), *(str(i) for i in ids), str(events[4].event_id)]

    only_failed = ReplayFilters(event_types=("notification.failed",))
    assert [s.event_id for s in await source.page(only_failed, None, 10)] == [
        str(events[4].event_id)
    ]
    window = ReplayFilters(
        occurred_from=T0 + timedelta(seconds=1), occurred_to=T0 + timedelta(seconds=3)
    )
    assert await source.count(window) == 4  # from inclusive, to exclusive
    both = ReplayFilters(
        event_types=("notification.sent", "notification.failed"), user_id="it-user"
    )
    assert await source.count(both) == 6
    first = (await source.page(filters, None, 1))[0]
    assert first.occurred_at == T0
    assert first.document["payload"]["channel"] == "slack"


async def test_a_bounded_count_stops_at_its_limit_or_its_budget(scratch_db: Db) -> None:
    writer = EventStoreWriter(scratch_db["events"])
    events = [event("e1", T0 + timedelta(seconds=n)) for n in range(5)]
    await writer.write_batch(
        [
            stored_document(e, topic="t", partition=0, offset=n, headers={})
            for n, e in enumerate(events)
        ]
    )
    source = MongoEventSource(scratch_db["events"])
    filters = ReplayFilters(execution_id="e1")

    everything = await source.count_up_to(filters, 10, budget_s=10)
    assert (everything.n, everything.complete) == (5, True)
    at_the_limit = await source.count_up_to(filters, 3, budget_s=10)
    assert (at_the_limit.n, at_the_limit.complete) == (3, False)  # "at least 3"
    # A budget that is over before the first round trip: nothing counted, and it says so.
    cut = await source.count_up_to(filters, 10, budget_s=1e-6)
    assert (cut.n, cut.complete) == (0, False)
    with pytest.raises(QueryTimeoutError):
        await source.page(filters, None, 10, budget_s=1e-6)
    assert len(await source.page(filters, None, 10, budget_s=10)) == 5
    # The source still answers after cutting its reads short.
    assert await source.count(filters) == 5


def session(owner: str | None = "a", **spec: Any) -> ReplaySession:
    now = datetime.now(UTC).replace(microsecond=0)
    return ReplaySession(
        id=uuid.uuid4().hex,
        spec=SessionSpec(
            filters=ReplayFilters(
                event_types=("execution.completed",),
                execution_id="e",
                occurred_from=T0,
                occurred_to=T0 + timedelta(days=1),
            ),
            target=Target(spec.get("topic")),
            speed=Speed(spec.get("factor")),
            max_events=7,
            dry_run=spec.get("dry_run", False),
            reprocess=True,
        ),
        status=SessionStatus.CREATED,
        created_at=now,
        created_by="admin",
        matched=9,
        updated_at=now,
        owner=owner,
        lease_until=now + timedelta(seconds=30) if owner else None,
        preview=[PreviewItem("id-1", "execution.completed", "e", T0, "t")],
    )


async def test_a_session_round_trips_and_only_its_owner_saves_it(scratch_db: Db) -> None:
    store = MongoSessionStore(scratch_db)
    await store.ensure_indexes()
    original = session(topic="audit", factor=0.5)
    await store.insert(original)
    loaded = await store.get(original.id)
    assert loaded == original
    assert loaded is not None
    assert loaded.capped
    assert await store.get("missing") is None

    loaded.transition(SessionStatus.RUNNING, datetime.now(UTC).replace(microsecond=0))
    loaded.published, loaded.cursor = 3, Cursor(T0, "ev-3")
    loaded.trace_id = "f" * 32
    await store.save(loaded, "a")
    assert await store.get(original.id) == loaded
    with pytest.raises(OwnershipLostError):
        await store.save(loaded, "b")


async def test_sessions_are_listed_newest_first(scratch_db: Db) -> None:
    store = MongoSessionStore(scratch_db)
    older, newer = session(), session()
    older.created_at -= timedelta(minutes=5)
    newer.status = SessionStatus.COMPLETED
    await store.insert(older)
    await store.insert(newer)
    listed, total = await store.list_page(None, 10, 0)
    assert ([s.id for s in listed], total) == ([newer.id, older.id], 2)
    completed, total = await store.list_page(SessionStatus.COMPLETED, 10, 0)
    assert ([s.id for s in completed], total) == ([newer.id], 1)
    second, _ = await store.list_page(None, 1, 1)
    assert [s.id for s in second] == [older.id]


async def test_one_of_two_instances_takes_an_orphan_over(scratch_db: Db) -> None:
    dead = session(owner="dead")
    dead.lease_until = datetime.now(UTC) - timedelta(seconds=5)
    released = session(owner=None)
    alive = session(owner="alive")
    dry = session(owner=None, dry_run=True)
    store = MongoSessionStore(scratch_db)
    for s in (dead, released, alive, dry):
        await store.insert(s)
    orphans = {s.id for s in await store.orphaned(datetime.now(UTC))}
    assert orphans == {dead.id, released.id}

    # A second client: another instance.
    other_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, tz_aware=True
    )
    try:
        other = MongoSessionStore(other_client[scratch_db.name])
        seen = await store.get(dead.id)
        assert seen is not None
        lease = datetime.now(UTC) + timedelta(seconds=30)
        results = await asyncio.gather(
            store.take_over(seen, "a", lease), other.take_over(seen, "b", lease)
        )
    finally:
        await other_client.close()
    assert sorted(results) == [False, True]
    winner = "a" if results[0] else "b"
    adopted = await store.get(dead.id)
    assert adopted is not None
    assert adopted.owner == winner


async def test_controls_keep_the_last_request(scratch_db: Db) -> None:
    controls = MongoControlStore(scratch_db)
    assert await controls.requested("s") is None
    await controls.request("s", SessionStatus.PAUSED)
    await controls.request("s", SessionStatus.RUNNING)
    assert await controls.requested("s") is SessionStatus.RUNNING
