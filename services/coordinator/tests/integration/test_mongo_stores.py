"""The Mongo adapters of the coordinator against the stack's Mongo-wire server (FerretDB).

What the saga and the scheduler rely on: a claim, a finish and a slot are taken once, even
under concurrent attempts; leases count only while in the future. Each test has its own
database, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tests.stack import local_stack

from integr8scode_coordinator.adapters.mongo_results import MongoResultStore
from integr8scode_coordinator.adapters.mongo_sagas import MongoSagaStore
from integr8scode_coordinator.adapters.mongo_slots import MongoSlotPool
from integr8scode_coordinator.domain import outcomes
from integr8scode_coordinator.domain.ports import Reservation
from integr8scode_coordinator.domain.saga import ExecutionRequest, Saga, SagaStatus
from integr8scode_coordinator.domain.sandbox import SandboxResult
from integr8scode_events import ExecutionCompleted, ProducerInfo, decode_event

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
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
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
    assert stored.traceparent == saga.traceparent
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


async def test_claims_of_separate_instances_are_atomic_on_mongodb(
    db: AsyncDatabase[dict[str, Any]], sagas: MongoSagaStore
) -> None:
    if "ferretdbVersion" in await db.client.admin.command("buildInfo"):
        pytest.skip("FerretDB 1.x updates are not atomic across clients (FerretDB issue #3040)")
    instances = [MongoSagaStore(db["sagas"]) for _ in range(10)]
    await _created(sagas, "ex-shared")
    lease = _now() + timedelta(seconds=30)

    won = await asyncio.gather(
        *(store.claim_queued("ex-shared", f"c-{i}", lease) for i, store in enumerate(instances))
    )

    assert won.count(True) == 1


async def test_a_heartbeat_never_undoes_a_concurrent_finish(sagas: MongoSagaStore) -> None:
    # On FerretDB an update rewrites the whole document; without serialization a lease renewal
    # racing the finish wrote the running state back over the terminal one.
    lease = _now() + timedelta(seconds=30)
    for i in range(20):
        execution_id = f"ex-hb-{i}"
        await _active(sagas, execution_id, SagaStatus.RUNNING, ME, lease)
        event = _event(execution_id)

        await asyncio.gather(
            sagas.finish(execution_id, SagaStatus.COMPLETED, event),
            sagas.renew_leases(ME, [execution_id], lease + timedelta(seconds=5)),
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


async def test_leases_expire_and_are_taken_over_once(sagas: MongoSagaStore) -> None:
    past, future = _now() - timedelta(seconds=10), _now() + timedelta(seconds=30)
    await _active(sagas, "ex-dead", SagaStatus.RUNNING, OTHER, past)
    await _active(sagas, "ex-dead-reserved", SagaStatus.RESERVED, OTHER, past)
    await _active(sagas, "ex-alive", SagaStatus.RUNNING, OTHER, future)
    await _created(sagas, "ex-queued")

    expired = await sagas.expired(_now(), limit=10)

    assert {s.execution_id for s in expired} == {"ex-dead", "ex-dead-reserved"}
    assert await sagas.take_over("ex-alive", ME, future) is None
    assert await sagas.take_over("ex-queued", ME, future) is None
    taken = await asyncio.gather(*(sagas.take_over("ex-dead", f"c-{i}", future) for i in range(5)))
    winners = [t for t in taken if t is not None]
    assert len(winners) == 1
    assert winners[0].status is SagaStatus.RUNNING
    assert winners[0].owner is not None
    assert winners[0].owner.startswith("c-")
    assert {s.execution_id for s in await sagas.expired(_now(), limit=10)} == {"ex-dead-reserved"}


async def test_renew_leases_only_for_the_owner(sagas: MongoSagaStore) -> None:
    soon, later = _now() + timedelta(seconds=1), _now() + timedelta(minutes=5)
    await _active(sagas, "ex-mine", SagaStatus.RUNNING, ME, soon)
    await _active(sagas, "ex-theirs", SagaStatus.RUNNING, OTHER, soon)

    await sagas.renew_leases(ME, ["ex-mine", "ex-theirs"], later)
    await sagas.renew_leases(ME, [], later)

    mine, theirs = await sagas.get("ex-mine"), await sagas.get("ex-theirs")
    assert mine is not None
    assert theirs is not None
    assert mine.lease_until is not None
    assert theirs.lease_until is not None
    assert abs(mine.lease_until - later) < timedelta(milliseconds=1)
    assert abs(theirs.lease_until - soon) < timedelta(milliseconds=1)


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
    assert [s.execution_id for s in await sagas.oldest_queued(10)] == ["ex-reserved"]


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
    holders = [d["execution_id"] async for d in db["slots"].find({"execution_id": {"$ne": None}})]
    assert sorted(holders) == sorted(
        f"ex-{i}" for i, a in enumerate(answers) if a is Reservation.RESERVED
    )
    assert await pool.in_use() == 3
    assert await pool.reserve("ex-late", "user-late", ME, lease, per_user=4) is Reservation.FULL


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

    await pool.release("ex-1")
    await pool.release("ex-1")  # idempotent

    assert await pool.in_use() == 0
    assert await pool.reserve("ex-2", "user-1", ME, lease, per_user=1) is Reservation.RESERVED


async def test_an_expired_lease_is_reclaimable(db: AsyncDatabase[dict[str, Any]]) -> None:
    pool = await _pool(db, size=1)
    assert (
        await pool.reserve("ex-dead", "user-1", OTHER, _now() - timedelta(seconds=1), per_user=1)
        is Reservation.RESERVED
    )

    # Neither the slot nor the user's share is held by a lease in the past.
    taken = await pool.reserve("ex-new", "user-1", ME, _now() + timedelta(seconds=30), per_user=1)

    assert taken is Reservation.RESERVED
    slot = await db["slots"].find_one({})
    assert slot is not None
    assert (slot["execution_id"], slot["owner"]) == ("ex-new", ME)
    await pool.release("ex-dead")  # the dead holder's late release frees nothing of ex-new
    assert await pool.in_use() == 1


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


async def test_ensure_slots_is_idempotent_and_shrinks(db: AsyncDatabase[dict[str, Any]]) -> None:
    pool = await _pool(db, size=5)
    await pool.ensure_slots()
    assert await db["slots"].count_documents({}) == 5
    lease = _now() + timedelta(seconds=30)
    for i in range(5):
        assert await pool.reserve(f"ex-{i}", f"u{i}", ME, lease, 1) is Reservation.RESERVED
    await pool.release("ex-1")
    await pool.release("ex-4")

    smaller = await _pool(db, size=3)

    indexes = sorted([d["index"] async for d in db["slots"].find({})])
    assert indexes == [0, 1, 2, 3]  # slot 3 is still held: it goes once released
    assert await smaller.reserve("ex-new", "u-new", ME, lease, 1) is Reservation.RESERVED
    assert await smaller.reserve("ex-full", "u-full", ME, lease, 1) is Reservation.FULL
    await smaller.release("ex-3")
    await smaller.ensure_slots()
    assert await db["slots"].count_documents({}) == 3


# -- results -------------------------------------------------------------------------------------


async def test_results_are_saved_once_per_execution(db: AsyncDatabase[dict[str, Any]]) -> None:
    results = MongoResultStore(db["execution_results"])

    await results.save("ex-1", {"_id": "ex-1", "stdout": "first"})
    await results.save("ex-1", {"_id": "ex-1", "stdout": "45\n"})

    docs = await db["execution_results"].find({}).to_list()
    assert docs == [{"_id": "ex-1", "stdout": "45\n"}]
