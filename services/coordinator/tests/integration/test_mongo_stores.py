"""The Mongo adapters of the coordinator against the stack's Mongo-wire server (FerretDB).

What the saga and the scheduler rely on: a claim, a finish and a slot are taken once, even
under concurrent attempts; leases count only while in the future. Each test has its own
database, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tests.stack import local_stack

from integr8scode_coordinator.adapters.mongo_results import MongoResultStore
from integr8scode_coordinator.adapters.mongo_runtimes import MongoRuntimeCatalog
from integr8scode_coordinator.adapters.mongo_sagas import MongoSagaStore
from integr8scode_coordinator.adapters.mongo_slots import MongoSlotPool
from integr8scode_coordinator.domain import outcomes
from integr8scode_coordinator.domain.ports import Reservation
from integr8scode_coordinator.domain.saga import ExecutionRequest, RequestFile, Saga, SagaStatus
from integr8scode_coordinator.sandbox import Runtime, SandboxResult
from integr8scode_events import ExecutionCompleted, ProducerInfo, StoredTraceContext, decode_event

STACK = local_stack()
PRODUCER = ProducerInfo(service="execution-coordinator", version="it")
ME, OTHER = "coordinator-a", "coordinator-b"


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def db() -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    name = f"coordinator_it_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


Clients = Callable[[int], Awaitable[list[AsyncDatabase[dict[str, Any]]]]]


@pytest.fixture
async def clients(db: AsyncDatabase[dict[str, Any]]) -> AsyncIterator[Clients]:
    """The test database through ``n`` separate clients: as many coordinator instances."""
    opened: list[AsyncMongoClient[dict[str, Any]]] = []

    async def make(n: int) -> list[AsyncDatabase[dict[str, Any]]]:
        for _ in range(n):
            opened.append(
                AsyncMongoClient(STACK.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True)
            )
        return [c[db.name] for c in opened[-n:]]

    try:
        yield make
    finally:
        for client in opened:
            await client.close()


async def _instances(clients: Clients, n: int) -> list[MongoSagaStore]:
    return [MongoSagaStore(d["sagas"]) for d in await clients(n)]


@pytest.fixture
async def sagas(db: AsyncDatabase[dict[str, Any]]) -> MongoSagaStore:
    store = MongoSagaStore(db["sagas"])
    await store.ensure_indexes()
    return store


async def _pool(db: AsyncDatabase[dict[str, Any]], size: int) -> MongoSlotPool:
    pool = MongoSlotPool(db["slots"], size=size)
    await pool.ensure_slots()
    return pool


def _request(execution_id: str, user_id: str = "user-1") -> ExecutionRequest:
    return ExecutionRequest(
        execution_id=execution_id,
        user_id=user_id,
        correlation_id=f"corr-{execution_id}",
        script="print(sum(range(10)))",
        language="python",
        language_version="3.11",
        stdin="",
        timeout_s=5.0,
        memory_mb=128,
    )


def _saga(execution_id: str, user_id: str = "user-1", enqueued_at: datetime | None = None) -> Saga:
    request = _request(execution_id, user_id)
    return Saga(
        execution_id=execution_id,
        user_id=user_id,
        correlation_id=request.correlation_id,
        request=request,
        status=SagaStatus.QUEUED,
        enqueued_at=enqueued_at or _now(),
        trace=StoredTraceContext(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "vendor=x"
        ),
        steps=["validate"],
    )


async def _created(store: MongoSagaStore, execution_id: str, user_id: str = "user-1") -> Saga:
    saga = _saga(execution_id, user_id)
    assert await store.create(saga)
    return saga


async def _active(
    store: MongoSagaStore, execution_id: str, status: SagaStatus, owner: str, lease: datetime
) -> None:
    """A saga claimed by ``owner`` (and running, if asked) with its lease until ``lease``."""
    await _created(store, execution_id)
    assert await store.claim_queued(execution_id, owner, lease)
    if status is SagaStatus.RUNNING:
        await store.record_step(execution_id, "run", SagaStatus.RUNNING, started_at=_now())


def _event(execution_id: str) -> dict[str, Any]:
    result = SandboxResult("completed", 0, None, "45\n", "", False, False, 1.0, 2.0, 3, None)
    event = outcomes.terminal_event(_request(execution_id), result, PRODUCER, cancelled_by="user")
    return event.model_dump(mode="json")


# -- sagas ---------------------------------------------------------------------------------------


async def test_create_once_and_read_back(sagas: MongoSagaStore) -> None:
    saga = _saga("ex-1")

    assert await sagas.create(saga) is True
    assert await sagas.create(_saga("ex-1", user_id="someone-else")) is False

    stored = await sagas.get("ex-1")
    assert stored is not None
    assert stored.request == saga.request
    assert (stored.user_id, stored.status, stored.steps) == (
        "user-1",
        SagaStatus.QUEUED,
        ["validate"],
    )
    assert stored.trace == saga.trace
    [queued] = await sagas.oldest_queued(limit=10)  # read from the queue entry, not the saga
    assert queued.trace == saga.trace
    assert queued.trace.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert stored.enqueued_at.tzinfo is not None
    assert abs(stored.enqueued_at - saga.enqueued_at) < timedelta(milliseconds=1)
    assert (stored.owner, stored.lease_until, stored.cancel_requested) == (None, None, False)
    assert await sagas.get("ex-missing") is None


async def test_oldest_queued_is_fifo_and_skips_the_rest(sagas: MongoSagaStore) -> None:
    t0 = _now() - timedelta(minutes=5)
    for name, offset, user in (("c", 30, "u1"), ("a", 0, "u1"), ("d", 40, "u2"), ("b", 10, "u2")):
        assert await sagas.create(_saga(name, user, t0 + timedelta(seconds=offset)))
    assert await sagas.claim_queued("b", ME, _now() + timedelta(seconds=30))

    assert [s.execution_id for s in await sagas.oldest_queued(limit=10)] == ["a", "c", "d"]
    assert [s.execution_id for s in await sagas.oldest_queued(limit=2)] == ["a", "c"]
    excluded = await sagas.oldest_queued(limit=10, exclude_users={"u1"})
    assert [s.execution_id for s in excluded] == ["d"]


async def test_the_queue_collection_follows_the_saga(
    db: AsyncDatabase[dict[str, Any]], sagas: MongoSagaStore
) -> None:
    t0 = _now() - timedelta(minutes=1)
    for i, name in enumerate(("q-claimed", "q-cancelled", "q-waiting")):
        assert await sagas.create(_saga(name, enqueued_at=t0 + timedelta(seconds=i)))
    assert await db["saga_queue"].count_documents({}) == 3

    assert await sagas.claim_queued("q-claimed", ME, _now() + timedelta(seconds=30))
    assert await sagas.finish(
        "q-cancelled", SagaStatus.CANCELLED, _event("q-cancelled"), only_from=SagaStatus.QUEUED
    )

    [entry] = await db["saga_queue"].find({}).to_list()
    assert (entry["_id"], entry["user_id"]) == ("q-waiting", "user-1")
    assert abs(entry["enqueued_at"] - (t0 + timedelta(seconds=2))) < timedelta(milliseconds=1)
    [waiting] = await sagas.oldest_queued(limit=10)
    stored = await sagas.get("q-waiting")
    assert waiting == stored  # the queue entry carries the whole queued saga
    # A redelivered request whose queue entry a crash lost gets it back; a claimed one doesn't.
    await db["saga_queue"].delete_many({})
    assert await sagas.create(_saga("q-waiting")) is False
    assert await sagas.create(_saga("q-claimed")) is False
    assert [d["_id"] async for d in db["saga_queue"].find({})] == ["q-waiting"]


async def test_a_cancel_flag_reaches_the_queue_and_the_claim(sagas: MongoSagaStore) -> None:
    await _created(sagas, "ex-flag-queued")
    await _active(sagas, "ex-flag-run", SagaStatus.RUNNING, ME, _now() + timedelta(seconds=30))

    await sagas.request_cancel("ex-flag-queued")
    await sagas.request_cancel("ex-flag-run")

    [queued] = await sagas.oldest_queued(limit=10)
    assert queued.cancel_requested
    assert await sagas.cancel_requested(ME, ["ex-flag-run", "ex-flag-queued"]) == ["ex-flag-run"]
    # Claimed after the flag was set: the claim carries it to the new owner's heartbeat.
    assert await sagas.claim_queued("ex-flag-queued", OTHER, _now() + timedelta(seconds=30))
    assert await sagas.cancel_requested(OTHER, ["ex-flag-queued"]) == ["ex-flag-queued"]


async def test_an_outbox_entry_left_by_a_crash_completes_the_saga(
    db: AsyncDatabase[dict[str, Any]], sagas: MongoSagaStore
) -> None:
    await _active(sagas, "ex-crash", SagaStatus.RUNNING, ME, _now() + timedelta(seconds=30))
    event = _event("ex-crash")
    # The finisher stored the terminal event and stopped before updating the saga.
    await db["saga_outbox"].insert_one(
        {"_id": "ex-crash", "status": "completed", "event": event, "error": None,
         "created_at": _now() - timedelta(seconds=10)}
    )  # fmt: skip
    assert await sagas.finish("ex-crash", SagaStatus.FAILED, _event("ex-crash")) is False
    [stored] = await sagas.unpublished_terminal(_now())

    await sagas.mark_published("ex-crash")

    assert stored == event
    saga = await sagas.get("ex-crash")
    assert saga is not None
    assert (saga.status, saga.owner) == (SagaStatus.COMPLETED, None)
    assert await db["saga_claims"].count_documents({"_id": "ex-crash"}) == 0
    assert await sagas.finish("ex-crash", SagaStatus.FAILED, _event("ex-crash")) is False


async def test_sagas_stored_before_the_queue_collections_are_migrated_once(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    old = MongoSagaStore(db["sagas"])
    for name, status in (("m-queued", "queued"), ("m-running", "running"), ("m-done", "failed")):
        doc = {
            "_id": name,
            "user_id": "user-1",
            "correlation_id": "c",
            "request": asdict(_request(name)),
            "status": status,
            "steps": ["validate"],
            "enqueued_at": _now(),
            "owner": OTHER if status == "running" else None,
            "lease_until": _now(),
            "terminal_published": False,
            "terminal_event": _event(name) if status == "failed" else None,
            "finished_at": _now() - timedelta(seconds=10),
        }
        await db["sagas"].insert_one(doc)

    await old.ensure_indexes()
    await db["saga_queue"].delete_many({})
    await old.ensure_indexes()  # once only: the queue stays as it is now

    assert await db["saga_queue"].count_documents({}) == 0
    running = await old.get("m-running")
    assert running is not None
    assert running.owner == OTHER
    [event] = await old.unpublished_terminal(_now())
    assert event["execution_id"] == "m-done"


@pytest.mark.parametrize("attempt", range(3))
async def test_only_one_of_concurrent_claims_wins(sagas: MongoSagaStore, attempt: int) -> None:
    await _created(sagas, f"ex-claimed-{attempt}")
    lease = _now() + timedelta(seconds=30)

    won = await asyncio.gather(
        *(sagas.claim_queued(f"ex-claimed-{attempt}", f"c-{i}", lease) for i in range(10))
    )

    assert sorted(won) == [False] * 9 + [True]
    saga = await sagas.get(f"ex-claimed-{attempt}")
    assert saga is not None
    assert saga.status is SagaStatus.RESERVED
    assert saga.owner == f"c-{won.index(True)}"
    assert saga.steps == ["validate", "reserve_slot"]
    assert saga.lease_until is not None
    assert abs(saga.lease_until - lease) < timedelta(milliseconds=1)


@pytest.mark.parametrize("attempt", range(3))
async def test_one_claim_wins_across_separate_instances(
    sagas: MongoSagaStore, clients: Clients, attempt: int
) -> None:
    instances = await _instances(clients, 8)
    execution_id = f"ex-shared-{attempt}"
    await _created(sagas, execution_id)
    lease = _now() + timedelta(seconds=30)

    won = await asyncio.gather(
        *(store.claim_queued(execution_id, f"c-{i}", lease) for i, store in enumerate(instances))
    )

    assert won.count(True) == 1
    saga = await sagas.get(execution_id)
    assert saga is not None
    assert (saga.status, saga.owner) == (SagaStatus.RESERVED, f"c-{won.index(True)}")
    assert saga.steps == ["validate", "reserve_slot"]
    assert await sagas.oldest_queued(limit=10) == []


@pytest.mark.parametrize("attempt", range(5))
async def test_a_cancel_while_queued_and_a_claim_never_both_win(
    db: AsyncDatabase[dict[str, Any]], sagas: MongoSagaStore, clients: Clients, attempt: int
) -> None:
    canceller, *claimers = await _instances(clients, 4)
    execution_id = f"ex-contested-{attempt}"
    await _created(sagas, execution_id)
    lease = _now() + timedelta(seconds=30)

    cancelled, *claimed = await asyncio.gather(
        canceller.finish(
            execution_id, SagaStatus.CANCELLED, _event(execution_id), only_from=SagaStatus.QUEUED
        ),
        *(store.claim_queued(execution_id, f"c-{i}", lease) for i, store in enumerate(claimers)),
    )

    assert claimed.count(True) <= 1
    assert not (cancelled and any(claimed))
    saga = await sagas.get(execution_id)
    assert saga is not None
    queued = [s.execution_id for s in await sagas.oldest_queued(limit=10)]
    outbox = await db["saga_outbox"].count_documents({"_id": execution_id})
    if cancelled:
        assert (saga.status, queued, outbox) == (SagaStatus.CANCELLED, [], 1)
    elif any(claimed):
        assert (saga.status, queued, outbox) == (SagaStatus.RESERVED, [], 0)
    else:  # both backed off: still queued, to be claimed (or cancelled by its flag) later
        assert (saga.status, queued, outbox) == (SagaStatus.QUEUED, [execution_id], 0)
        assert await db["saga_claims"].count_documents({"_id": execution_id}) == 0


async def test_a_cancel_flag_never_undoes_a_concurrent_finish(sagas: MongoSagaStore) -> None:
    # On FerretDB an update rewrites the whole document; without serialization a cancel flag
    # racing the finish wrote the running state back over the terminal one.
    lease = _now() + timedelta(seconds=30)
    for i in range(20):
        execution_id = f"ex-hb-{i}"
        await _active(sagas, execution_id, SagaStatus.RUNNING, ME, lease)
        event = _event(execution_id)

        await asyncio.gather(
            sagas.finish(execution_id, SagaStatus.COMPLETED, event),
            sagas.record_step(execution_id, "store_result", SagaStatus.RUNNING),
            sagas.request_cancel(execution_id),
        )

        saga = await sagas.get(execution_id)
        assert saga is not None
        assert saga.status is SagaStatus.COMPLETED, saga.steps
        assert (saga.owner, saga.lease_until) == (None, None)
        assert event in await sagas.unpublished_terminal(_now() + timedelta(seconds=1))


async def test_only_one_of_concurrent_finishes_wins(sagas: MongoSagaStore) -> None:
    await _active(sagas, "ex-end", SagaStatus.RUNNING, ME, _now() + timedelta(seconds=30))
    statuses = [SagaStatus.COMPLETED, SagaStatus.FAILED, SagaStatus.CANCELLED] * 3

    won = await asyncio.gather(
        *(sagas.finish("ex-end", s, _event("ex-end"), error=str(s)) for s in statuses)
    )

    assert won.count(True) == 1
    winner = statuses[won.index(True)]
    saga = await sagas.get("ex-end")
    assert saga is not None
    assert (saga.status, saga.error, saga.owner, saga.lease_until) == (
        winner,
        str(winner),
        None,
        None,
    )
    assert saga.finished_at is not None
    assert saga.steps[-1] == f"finish:{winner}"
    assert await sagas.finish("ex-end", SagaStatus.FAILED, _event("ex-end")) is False


@pytest.mark.parametrize("attempt", range(3))
async def test_one_finish_wins_across_separate_instances(
    db: AsyncDatabase[dict[str, Any]], sagas: MongoSagaStore, clients: Clients, attempt: int
) -> None:
    instances = await _instances(clients, 6)
    execution_id = f"ex-ends-{attempt}"
    await _active(sagas, execution_id, SagaStatus.RUNNING, ME, _now() + timedelta(seconds=30))
    statuses = [SagaStatus.COMPLETED, SagaStatus.FAILED, SagaStatus.CANCELLED] * 2

    won = await asyncio.gather(
        *(
            store.finish(execution_id, s, _event(execution_id), error=str(s))
            for store, s in zip(instances, statuses, strict=True)
        )
    )

    assert won.count(True) == 1
    winner = statuses[won.index(True)]
    [entry] = await db["saga_outbox"].find({"_id": execution_id}).to_list()
    assert entry["status"] == winner
    saga = await sagas.get(execution_id)
    assert saga is not None
    assert (saga.status, saga.error) == (winner, str(winner))
    # The winner's claim goes with its next batch of deferred deletes.
    for store in instances:
        await store.flush_deletes()
    assert await db["saga_claims"].count_documents({"_id": execution_id}) == 0
    # Once published (its outbox entry gone), the saga still ends only once.
    await sagas.mark_published(execution_id)
    assert await db["saga_outbox"].count_documents({}) == 0
    late = await asyncio.gather(
        *(
            store.finish(execution_id, SagaStatus.FAILED, _event(execution_id))
            for store in instances
        )
    )
    assert late == [False] * len(instances)
    assert await db["saga_outbox"].count_documents({}) == 0
    after = await sagas.get(execution_id)
    assert after is not None
    assert after.status is winner


async def test_finish_only_from_queued_refuses_a_reserved_saga(sagas: MongoSagaStore) -> None:
    await _active(sagas, "ex-reserved", SagaStatus.RESERVED, ME, _now() + timedelta(seconds=30))
    await _created(sagas, "ex-queued")

    refused = await sagas.finish(
        "ex-reserved", SagaStatus.CANCELLED, _event("ex-reserved"), only_from=SagaStatus.QUEUED
    )
    done = await sagas.finish(
        "ex-queued", SagaStatus.CANCELLED, _event("ex-queued"), only_from=SagaStatus.QUEUED
    )

    assert (refused, done) == (False, True)
    reserved = await sagas.get("ex-reserved")
    assert reserved is not None
    assert reserved.status is SagaStatus.RESERVED
    queued = await sagas.get("ex-queued")
    assert queued is not None
    assert queued.status is SagaStatus.CANCELLED


async def test_record_step_moves_an_active_saga_only(sagas: MongoSagaStore) -> None:
    started = _now()
    await _active(sagas, "ex-steps", SagaStatus.RESERVED, ME, _now() + timedelta(seconds=30))

    await sagas.record_step("ex-steps", "run", SagaStatus.RUNNING, started_at=started)
    await sagas.finish("ex-steps", SagaStatus.COMPLETED, _event("ex-steps"))
    await sagas.record_step("ex-steps", "store_result", SagaStatus.RUNNING)

    saga = await sagas.get("ex-steps")
    assert saga is not None
    assert saga.status is SagaStatus.COMPLETED
    assert saga.steps == ["validate", "reserve_slot", "run", "finish:completed"]
    assert saga.started_at is not None
    assert abs(saga.started_at - started) < timedelta(milliseconds=1)


async def test_a_take_over_is_won_once_across_separate_instances(
    sagas: MongoSagaStore, clients: Clients
) -> None:
    instances = await _instances(clients, 8)
    expired = _now() - timedelta(seconds=10)

    taken = await asyncio.gather(*(store.take_over("ex-dead", expired) for store in instances))

    assert taken.count(True) == 1
    assert await sagas.take_over("ex-dead", expired) is False
    # The same execution's next expired lease (its recoverer died too) can be taken again.
    assert await sagas.take_over("ex-dead", expired + timedelta(seconds=15)) is True


async def test_requeue_only_a_reserved_saga_of_the_owner(sagas: MongoSagaStore) -> None:
    future = _now() + timedelta(seconds=30)
    await _active(sagas, "ex-reserved", SagaStatus.RESERVED, ME, future)
    await _active(sagas, "ex-running", SagaStatus.RUNNING, ME, future)

    assert await sagas.requeue("ex-reserved", OTHER) is False
    assert await sagas.requeue("ex-running", ME) is False
    assert await sagas.requeue("ex-reserved", ME) is True

    saga = await sagas.get("ex-reserved")
    assert saga is not None
    assert (saga.status, saga.owner, saga.lease_until) == (SagaStatus.QUEUED, None, None)
    assert saga.steps[-1] == "requeue"
    [queued] = await sagas.oldest_queued(10)
    assert queued.execution_id == "ex-reserved"
    assert abs(queued.enqueued_at - saga.enqueued_at) < timedelta(milliseconds=1)
    assert await sagas.claim_queued("ex-reserved", OTHER, future) is True


async def test_cancel_flags(sagas: MongoSagaStore) -> None:
    future = _now() + timedelta(seconds=30)
    await _active(sagas, "ex-run", SagaStatus.RUNNING, ME, future)
    await _active(sagas, "ex-other", SagaStatus.RUNNING, ME, future)
    await _active(sagas, "ex-done", SagaStatus.RUNNING, ME, future)
    await sagas.finish("ex-done", SagaStatus.COMPLETED, _event("ex-done"))

    for execution_id in ("ex-run", "ex-done", "ex-missing"):
        await sagas.request_cancel(execution_id)

    flagged = await sagas.cancel_requested(ME, ["ex-run", "ex-other", "ex-done"])
    assert flagged == ["ex-run"]
    assert await sagas.cancel_requested(ME, []) == []
    run = await sagas.get("ex-run")
    assert run is not None
    assert run.cancel_requested


async def test_terminal_outbox(sagas: MongoSagaStore) -> None:
    await _active(sagas, "ex-out", SagaStatus.RUNNING, ME, _now() + timedelta(seconds=30))
    await _active(sagas, "ex-busy", SagaStatus.RUNNING, ME, _now() + timedelta(seconds=30))
    event = _event("ex-out")
    before = _now() - timedelta(seconds=1)
    assert await sagas.finish("ex-out", SagaStatus.COMPLETED, event)

    assert await sagas.unpublished_terminal(before) == []
    [stored] = await sagas.unpublished_terminal(_now() + timedelta(seconds=1))
    assert stored == event
    decoded = decode_event(json.dumps(stored).encode())  # the path of the outbox sweep
    assert isinstance(decoded, ExecutionCompleted)
    assert str(decoded.event_id) == event["event_id"]

    await sagas.mark_published("ex-out")
    assert await sagas.unpublished_terminal(_now() + timedelta(seconds=1)) == []


# -- slots ---------------------------------------------------------------------------------------


async def test_n_slots_take_n_concurrent_runs_and_no_more(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    pool = await _pool(db, size=3)
    lease = _now() + timedelta(seconds=30)

    answers = await asyncio.gather(
        *(pool.reserve(f"ex-{i}", f"user-{i}", ME, lease, per_user=4) for i in range(10))
    )

    assert answers.count(Reservation.RESERVED) == 3
    assert answers.count(Reservation.FULL) == 7
    holders = [d["execution_id"] async for d in db["slots"].find({})]
    assert sorted(holders) == sorted(
        f"ex-{i}" for i, a in enumerate(answers) if a is Reservation.RESERVED
    )
    assert await pool.in_use() == 3
    assert await pool.reserve("ex-late", "user-late", ME, lease, per_user=4) is Reservation.FULL


@pytest.mark.parametrize("attempt", range(3))
async def test_slots_never_exceed_the_size_across_separate_instances(
    db: AsyncDatabase[dict[str, Any]], clients: Clients, attempt: int
) -> None:
    pools = [MongoSlotPool(d["slots"], size=4) for d in await clients(8)]
    await pools[0].ensure_slots()
    lease = _now() + timedelta(seconds=30)

    answers = await asyncio.gather(
        *(
            pool.reserve(f"ex-{attempt}-{i}-{j}", f"user-{i}-{j}", f"c-{i}", lease, per_user=4)
            for i, pool in enumerate(pools)
            for j in range(3)
        )
    )

    assert answers.count(Reservation.RESERVED) == 4
    assert await db["slots"].count_documents({}) == 4
    ids = sorted([d["_id"] async for d in db["slots"].find({})])
    assert ids == [f"slot-{i:04d}" for i in range(4)]


async def test_a_user_at_the_cap_is_refused_before_the_pool_is_full(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    pool = await _pool(db, size=5)
    lease = _now() + timedelta(seconds=30)

    first = [await pool.reserve(f"ex-{i}", "heavy", ME, lease, per_user=2) for i in range(3)]

    assert first == [Reservation.RESERVED, Reservation.RESERVED, Reservation.USER_LIMIT]
    assert await pool.reserve("ex-light", "light", ME, lease, per_user=2) is Reservation.RESERVED
    assert await pool.in_use() == 3


async def test_release_frees_the_slot_and_the_users_share(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    pool = await _pool(db, size=1)
    lease = _now() + timedelta(seconds=30)
    assert await pool.reserve("ex-1", "user-1", ME, lease, per_user=1) is Reservation.RESERVED
    assert await pool.reserve("ex-2", "user-1", ME, lease, per_user=1) is Reservation.USER_LIMIT

    await pool.release("ex-1", OTHER)  # not the holder: nothing happens
    assert await pool.in_use() == 1
    await pool.release("ex-1", ME)
    await pool.release("ex-1", ME)  # idempotent

    assert await pool.in_use() == 0
    assert await db["slots"].count_documents({}) == 0
    assert await pool.reserve("ex-2", "user-1", ME, lease, per_user=1) is Reservation.RESERVED


async def test_an_expired_slot_waits_for_its_recovery(db: AsyncDatabase[dict[str, Any]]) -> None:
    pool = await _pool(db, size=1)
    dead_lease = _now() - timedelta(seconds=1)
    assert (
        await pool.reserve("ex-dead", "user-1", OTHER, dead_lease, per_user=1)
        is Reservation.RESERVED
    )
    future = _now() + timedelta(seconds=30)

    # Not reused behind the janitor's back (its run would never be recovered), but a lease in
    # the past does not count against the user's share.
    assert await pool.reserve("ex-new", "user-1", ME, future, per_user=1) is Reservation.FULL
    [slot] = await pool.expired(_now(), limit=10)
    assert (slot.slot_id, slot.execution_id, slot.user_id, slot.owner) == (
        "slot-0000",
        "ex-dead",
        "user-1",
        OTHER,
    )
    assert abs(slot.lease_until - dead_lease) < timedelta(milliseconds=1)

    assert await pool.prolong(slot, future) is True
    assert await pool.prolong(slot, future) is False  # it changed since that read
    assert await pool.expired(_now(), limit=10) == []
    await pool.release("ex-dead", OTHER)
    assert await pool.reserve("ex-new", "user-1", ME, future, per_user=1) is Reservation.RESERVED


async def test_renew_extends_only_the_owners_slots(db: AsyncDatabase[dict[str, Any]]) -> None:
    pool = await _pool(db, size=2)
    soon = _now() + timedelta(seconds=1)
    await pool.reserve("ex-mine", "u1", ME, soon, per_user=2)
    await pool.reserve("ex-theirs", "u2", OTHER, soon, per_user=2)
    later = _now() + timedelta(minutes=5)

    await pool.renew(ME, ["ex-mine", "ex-theirs"], later)

    leases = {d["execution_id"]: d["lease_until"] async for d in db["slots"].find({})}
    assert abs(leases["ex-mine"] - later) < timedelta(milliseconds=1)
    assert abs(leases["ex-theirs"] - soon) < timedelta(milliseconds=1)


async def test_a_smaller_pool_admits_nothing_until_below_its_size(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    # Free slot documents of the earlier layout are dropped; held ones stay until released.
    lease = _now() + timedelta(seconds=30)
    await db["slots"].insert_many(
        [
            {"_id": "slot-0007", "index": 7, "execution_id": None},
            {"_id": "slot-0000", "index": 0, "execution_id": "ex-old", "owner": OTHER},
        ]
    )
    pool = await _pool(db, size=5)
    await pool.ensure_slots()
    assert [d["_id"] async for d in db["slots"].find({})] == ["slot-0000"]
    await pool.release("ex-old", OTHER)
    for i in range(5):
        assert await pool.reserve(f"ex-{i}", f"u{i}", ME, lease, 1) is Reservation.RESERVED
    await pool.release("ex-1", ME)
    await pool.release("ex-4", ME)

    smaller = await _pool(db, size=2)

    assert await smaller.reserve("ex-new", "u-new", ME, lease, 1) is Reservation.FULL  # 3 held
    for execution_id in ("ex-0", "ex-2", "ex-3"):
        await smaller.release(execution_id, ME)
    assert await smaller.reserve("ex-new", "u-new", ME, lease, 1) is Reservation.RESERVED
    assert await smaller.reserve("ex-full", "u-full", ME, lease, 1) is Reservation.RESERVED
    assert await smaller.reserve("ex-over", "u-over", ME, lease, 1) is Reservation.FULL


# -- results -------------------------------------------------------------------------------------


async def test_results_are_saved_once_per_execution(db: AsyncDatabase[dict[str, Any]]) -> None:
    results = MongoResultStore(db["execution_results"])

    await results.save("ex-1", {"_id": "ex-1", "stdout": "first"})
    await results.save("ex-1", {"_id": "ex-1", "stdout": "45\n"})

    docs = await db["execution_results"].find({}).to_list()
    assert docs == [{"_id": "ex-1", "stdout": "45\n"}]


async def test_a_claim_left_by_our_own_failed_attempt_is_carried_on(
    sagas: MongoSagaStore, db: AsyncDatabase[dict[str, Any]]
) -> None:
    # The claim insert landed but its answer didn't (the Mongo-wire server died mid-call).
    await _created(sagas, "ex-own-leftover")
    stale = _now() - timedelta(seconds=5)
    await db["saga_claims"].insert_one(
        {"_id": "ex-own-leftover", "owner": ME, "at": stale, "lease_until": stale}
    )
    future = _now() + timedelta(seconds=30)

    assert await sagas.claim_queued("ex-own-leftover", OTHER, future) is False
    assert await sagas.claim_queued("ex-own-leftover", ME, future) is True

    saga = await sagas.get("ex-own-leftover")
    assert saga is not None
    assert (saga.status, saga.owner) == (SagaStatus.RESERVED, ME)
    claim = await db["saga_claims"].find_one({"_id": "ex-own-leftover"})
    assert claim is not None
    assert abs(claim["lease_until"].replace(tzinfo=UTC) - future) < timedelta(milliseconds=1)


async def test_a_claim_left_by_a_lost_instance_is_cleared_by_requeue(
    sagas: MongoSagaStore, db: AsyncDatabase[dict[str, Any]]
) -> None:
    await _created(sagas, "ex-dead-leftover")
    stale = _now() - timedelta(seconds=5)
    await db["saga_claims"].insert_one(
        {"_id": "ex-dead-leftover", "owner": OTHER, "at": stale, "lease_until": stale}
    )
    future = _now() + timedelta(seconds=30)
    assert await sagas.claim_queued("ex-dead-leftover", ME, future) is False

    assert await sagas.requeue("ex-dead-leftover", ME) is False  # not ours to clear
    assert await sagas.requeue("ex-dead-leftover", OTHER) is True  # the janitor, for OTHER

    assert await sagas.claim_queued("ex-dead-leftover", ME, future) is True
    queued = {q.execution_id for q in await sagas.oldest_queued(10)}
    assert "ex-dead-leftover" not in queued  # claimed: out of the queue


async def test_a_request_with_args_files_and_new_limits_reads_back_whole(
    sagas: MongoSagaStore,
) -> None:
    """Issue 14: the new request fields survive Mongo, from the saga and from its queue entry."""
    saga = _saga("ex-features")
    saga.request = dataclasses.replace(
        saga.request,
        cpu_time_s=1.5,
        max_processes=8,
        max_output_kb=4,
        stdin="AAE=",
        stdin_encoding="base64",
        args=("a", "b c"),
        files=(RequestFile("d/in.txt", "hi"), RequestFile("bin", "AP8=", "base64")),
        expected_stdout="hi\n",
    )
    assert await sagas.create(saga) is True
    stored = await sagas.get("ex-features")
    assert stored is not None
    assert stored.request == saga.request
    [queued] = await sagas.oldest_queued(limit=10)
    assert queued.request == saga.request


async def test_runtimes_publish_compiled_and_full_versions_merged_across_instances(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Issue 14: each language's document says whether it compiles and which exact versions
    the coordinators found; a second instance's versions join the first's."""
    catalog = MongoRuntimeCatalog(db["runtimes"])
    c = Runtime("c", ["12"], "12", script_file="main.c", compiled=True, full_versions=["12.2.0"])
    lua = Runtime(
        "lua", ["5.4", "5.1"], "5.4", script_file="main.lua", full_versions=["5.4.4", "5.1.5"]
    )
    await catalog.publish([c, lua], "bubblewrap", "one")
    await catalog.publish(
        [dataclasses.replace(lua, versions=["5.3"], full_versions=["5.3.6"])], "bubblewrap", "two"
    )
    docs = {d["_id"]: d async for d in db["runtimes"].find({})}
    assert (docs["c"]["compiled"], docs["c"]["full_versions"]) == (True, ["12.2.0"])
    assert docs["lua"]["compiled"] is False
    assert sorted(docs["lua"]["versions"]) == ["5.1", "5.3", "5.4"]
    assert sorted(docs["lua"]["full_versions"]) == ["5.1.5", "5.3.6", "5.4.4"]
