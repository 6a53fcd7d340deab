"""The Mongo adapters against the real FerretDB: round trips, the version check, the due query,
and the once-only decisions of ``dead_letter_attempts`` raced by separate clients."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from tests.stack import local_stack

from integr8scode_dlq_processor.adapters.mongo_attempts import MongoAttemptClaims
from integr8scode_dlq_processor.adapters.mongo_dead_letters import MongoDeadLetterStore
from integr8scode_dlq_processor.domain import transitions as tr
from integr8scode_dlq_processor.domain.policies import RetryPolicy
from integr8scode_dlq_processor.domain.ports import ClaimOutcome, ListFilter, Publication
from integr8scode_dlq_processor.domain.records import DeadLetter, Status
from integr8scode_dlq_processor.domain.reports import FailureReport

STACK = local_stack()
Clients = Callable[[], AsyncMongoClient[dict[str, Any]]]


@pytest.fixture
async def clients() -> AsyncIterator[tuple[str, Clients]]:
    """A database of its own, and a factory of independent clients (separate connections, as
    separate instances would have)."""
    database = f"dlq_it_{uuid.uuid4().hex[:10]}"
    made: list[AsyncMongoClient[dict[str, Any]]] = []

    def client() -> AsyncMongoClient[dict[str, Any]]:
        c: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            STACK.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        made.append(c)
        return c

    try:
        yield database, client
    finally:
        await client().drop_database(database)
        for c in made:
            await c.close()


def _record(
    make_report: Callable[..., FailureReport], make_policy: Callable[..., RetryPolicy], **h: str
) -> DeadLetter:
    report = make_report(
        headers={"x.odd$name": "kept", **h},
        value=b'{"event_id": "e-1", "execution_id": "x-1", "n": [1, {"deep": true}]}',
        key=b"\xffkey",
    )
    return tr.open_record(report, make_policy(), report.failed_at, lambda low, high: high)


async def test_records_round_trip_and_updates_need_the_version_read(
    clients: tuple[str, Clients],
    make_report: Callable[..., FailureReport],
    make_policy: Callable[..., RetryPolicy],
) -> None:
    database, client = clients
    store = MongoDeadLetterStore(client()[database]["dead_letters"])
    await store.ensure_indexes()
    record = _record(make_report, make_policy)
    assert await store.insert(record)
    assert not await store.insert(record)
    assert await store.get(record.id) == record

    newer = record.model_copy(update={"version": 1, "status": Status.RETRYING})
    assert await store.replace(newer, expected_version=0)
    stale = record.model_copy(update={"version": 1, "status": Status.DISCARDED})
    assert not await store.replace(stale, expected_version=0)
    stored = await store.get(record.id)
    assert stored is not None
    assert stored.status is Status.RETRYING
    assert stored.key == b"\xffkey"
    assert stored.header_map()["x.odd$name"] == "kept"


async def test_due_pages_and_counts(
    clients: tuple[str, Clients],
    make_report: Callable[..., FailureReport],
    make_policy: Callable[..., RetryPolicy],
) -> None:
    database, client = clients
    store = MongoDeadLetterStore(client()[database]["dead_letters"])
    due = _record(make_report, make_policy, **{"x-original-offset": "1"})
    later = _record(make_report, make_policy, **{"x-original-offset": "2"})
    later = later.model_copy(update={"next_attempt_at": due.created_at + timedelta(hours=1)})
    parked = tr.discard(
        _record(make_report, make_policy, **{"x-consumer-group": "g2"}), "x", "a", due.created_at
    )
    for r in (due, later, parked):
        await store.insert(r)
    await client()[database]["dead_letters"].insert_one(
        {"_id": "garbage", "status": "scheduled", "next_attempt_at": due.created_at}
    )

    now = due.created_at + timedelta(seconds=5)
    assert [r.id for r in await store.due(now, 10)] == [due.id]  # the unreadable one is skipped
    page = await store.page(ListFilter(consumer_group="notifier"), limit=10, offset=0)
    assert page.total == 2
    assert {r.id for r in page.items} == {due.id, later.id}
    only_parked = await store.page(ListFilter(status=Status.DISCARDED), limit=10, offset=0)
    assert [r.id for r in only_parked.items] == [parked.id]
    counts = {(c.consumer_group, c.status): c.count for c in await store.counts()}
    assert counts == {
        ("notifier", Status.SCHEDULED): 2,
        ("g2", Status.DISCARDED): 1,
        (None, Status.SCHEDULED): 1,  # the unreadable document is still counted
    }


async def test_an_attempt_is_claimed_once_however_many_race(clients: tuple[str, Clients]) -> None:
    database, client = clients
    racers = [MongoAttemptClaims(client()[database]["dead_letter_attempts"]) for _ in range(6)]
    await racers[0].ensure_indexes()
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=30)
    results = await asyncio.gather(
        *(c.claim("rec", 1, f"owner-{i}", now, lease) for i, c in enumerate(racers))
    )
    outcomes = [r.outcome for r in results]
    assert outcomes.count(ClaimOutcome.ACQUIRED) == 1
    assert outcomes.count(ClaimOutcome.BUSY) == 5

    # The holder dies; after its lease exactly one of the others takes over.
    after = lease + timedelta(seconds=1)
    takeovers = await asyncio.gather(
        *(
            c.claim("rec", 1, f"taker-{i}", after, after + timedelta(seconds=30))
            for i, c in enumerate(racers)
        )
    )
    assert [t.outcome for t in takeovers].count(ClaimOutcome.ACQUIRED) == 1
    winner = next(i for i, t in enumerate(takeovers) if t.outcome is ClaimOutcome.ACQUIRED)

    at = after.replace(microsecond=after.microsecond // 1000 * 1000)  # BSON keeps milliseconds
    published = Publication(partition=1, offset=7, published_at=at, trace_id="a" * 32)
    await racers[0].published("rec", 1, f"taker-{winner}", published)
    again = await racers[1].claim("rec", 1, "late", after + timedelta(hours=1), after)
    assert again.outcome is ClaimOutcome.PUBLISHED
    assert again.publication == published


async def test_a_released_attempt_can_be_claimed_again(clients: tuple[str, Clients]) -> None:
    database, client = clients
    claims = MongoAttemptClaims(client()[database]["dead_letter_attempts"])
    now = datetime.now(UTC)
    lease = now + timedelta(seconds=30)
    assert (await claims.claim("rec", 2, "a", now, lease)).outcome is ClaimOutcome.ACQUIRED
    assert (await claims.claim("rec", 2, "b", now, lease)).outcome is ClaimOutcome.BUSY
    await claims.release("rec", 2, "a")
    assert (await claims.claim("rec", 2, "b", now, lease)).outcome is ClaimOutcome.ACQUIRED
    await claims.release("rec", 2, "b")
    assert (await claims.claim("rec", 2, "c", now, lease)).outcome is ClaimOutcome.ACQUIRED
