"""Mongo-wire commands of one execution's saga, counted against the stack's Mongo-wire server.

One execution as the coordinator makes it: ``accept`` (orchestrator), the admission pass it
wakes (scheduler: the queue, the slots, ``reserve``, ``claim_queued``), the run (orchestrator:
steps, result, finish, publish, mark published, release) and the pass the run's end wakes.
A pymongo ``CommandListener`` on the stores' own client counts each command by name and
collection. The bounds are loose on purpose: they pin what issue 13 removed (a saga read per
step, the outbox and saga re-read after this process's own finish), not the exact total.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry import trace
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from tests.coordinator_stand_ins import InstantRunner, RecordingPublisher
from tests.stack import local_stack

from integr8scode_coordinator.adapters.deferred_deletes import DeferredDeletes
from integr8scode_coordinator.adapters.mongo_results import MongoResultStore
from integr8scode_coordinator.adapters.mongo_sagas import MongoSagaStore
from integr8scode_coordinator.adapters.mongo_slots import MongoSlotPool
from integr8scode_coordinator.domain.ports import HeldSlots, Reservation
from integr8scode_coordinator.domain.saga import ExecutionRequest, SagaStatus
from integr8scode_coordinator.orchestrator import ExecutionSaga, RunPolicy
from integr8scode_coordinator.scheduler import Scheduler
from integr8scode_events import ProducerInfo

STACK = local_stack()
OWNER = "coordinator-count"
POLICY = RunPolicy(
    max_timeout_s=10,
    max_memory_mb=512,
    max_output_bytes=1 << 20,
    lease=timedelta(seconds=30),
    per_user=4,
)


class CommandCounter(monitoring.CommandListener):
    """(command, collection) of every command started, while ``counting`` is set."""

    def __init__(self) -> None:
        self.counting = False
        self.commands: Counter[tuple[str, str]] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.counting:
            return
        target = event.command.get(event.command_name)
        self.commands[(event.command_name, target if isinstance(target, str) else "")] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def total(self, collection: str | None = None, command: str | None = None) -> int:
        return sum(
            n
            for (name, coll), n in self.commands.items()
            if (collection is None or coll == collection) and (command is None or name == command)
        )


@dataclass
class Coordinator:
    counter: CommandCounter
    store: MongoSagaStore
    slots: MongoSlotPool
    saga: ExecutionSaga
    publisher: RecordingPublisher
    db: AsyncDatabase[dict[str, Any]]


@pytest.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    counter = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True, event_listeners=[counter]
    )
    name = f"coordinator_count_{uuid.uuid4().hex[:12]}"
    db = client[name]
    # Deferred deletes only when the test flushes them: counted apart, never by timing.
    store = MongoSagaStore(db["sagas"], deletes=DeferredDeletes(delay_s=3600))
    try:
        await store.ensure_indexes()
        slots = MongoSlotPool(db["slots"], size=8)
        await slots.ensure_slots()
        publisher = RecordingPublisher()
        saga = ExecutionSaga(
            store=store,
            slots=slots,
            results=MongoResultStore(db["execution_results"]),
            runner=InstantRunner(),
            publisher=publisher,
            producer=ProducerInfo(service="execution-coordinator", version="it"),
            policy=POLICY,
            instance_id=OWNER,
            tracer=trace.get_tracer("count-it"),
        )
        yield Coordinator(counter, store, slots, saga, publisher, db)
    finally:
        await store.close()
        await client.drop_database(name)
        await client.close()


def _request(execution_id: str) -> ExecutionRequest:
    return ExecutionRequest(
        execution_id=execution_id,
        user_id="user-count",
        correlation_id=f"corr-{execution_id}",
        script="print(sum(range(10)))",
        language="python",
        language_version="3.11",
        stdin="",
        timeout_s=5.0,
        memory_mb=128,
    )


async def _one_execution(c: Coordinator, execution_id: str) -> SagaStatus:
    """One execution as the scheduler makes it, with two other users' runs held by another
    instance (as under load): accept, the admission pass that wakes (it reserves, claims and
    starts the run), the run to its end, and the pass the run's end wakes (nothing queued)."""
    others = datetime.now(UTC) + timedelta(minutes=5)
    for i, user in enumerate(("user-a", "user-b")):
        await c.db["slots"].insert_one(
            {
                "_id": f"slot-{i + 4:04d}",
                "execution_id": f"elsewhere-{i}",
                "user_id": user,
                "owner": "coordinator-b",
                "lease_until": others,
                "taken_at": datetime.now(UTC),
            }
        )
    scheduler = Scheduler(
        saga=c.saga,
        store=c.store,
        slots=c.slots,
        policy=POLICY,
        local_capacity=4,
        tracer=trace.get_tracer("count-it"),
    )
    c.counter.counting = True
    assert await c.saga.accept(_request(execution_id))
    await scheduler._admit()
    assert scheduler.running == [execution_id]
    await scheduler.drain(grace_s=30)
    await scheduler._admit()
    c.counter.counting = False
    doc = await c.db["sagas"].find_one({"_id": execution_id})
    assert doc is not None
    return SagaStatus(doc["status"])


async def test_one_execution_reads_its_saga_once(coordinator: Coordinator) -> None:
    c = coordinator
    status = await _one_execution(c, "ex-count")
    counts = c.counter
    print(f"\nMongo-wire commands for one execution: {counts.total()}")
    for (command, collection), n in sorted(counts.commands.items()):
        print(f"  {command:8} {collection:18} {n}")

    # It ran to its one terminal outcome, published once and cleaned up after itself.
    assert status is SagaStatus.COMPLETED
    published = [e.event_type for e in c.publisher.events]
    assert published == ["execution.started", "execution.completed"]
    doc = await c.db["sagas"].find_one({"_id": "ex-count"})
    assert doc is not None
    assert doc["status"] == "completed"
    assert doc["steps"] == [
        "validate",
        "reserve_slot",
        "run",
        "store_result",
        "finish:completed",
    ]
    assert await c.db["saga_queue"].count_documents({"_id": "ex-count"}) == 0
    assert await c.db["slots"].count_documents({"execution_id": "ex-count"}) == 0
    # The claim and the published outbox entry wait for the next batch of deferred deletes:
    # one ``delete_many`` per collection for every execution that ended since the last one.
    per_execution = counts.total()
    counts.counting = True
    await c.store.flush_deletes()
    counts.counting = False
    assert counts.total() - per_execution == 2
    assert (counts.total("saga_claims", "delete"), counts.total("saga_outbox", "delete")) == (1, 1)
    for small in ("saga_claims", "saga_outbox"):
        assert await c.db[small].count_documents({"_id": "ex-count"}) == 0

    # Before issue 13 (this same scenario): 30 in all; ``sagas`` read 5 times and updated 5,
    # ``saga_queue`` read 4 times (once per fair-share round), ``slots`` 3, ``saga_outbox`` 2.
    # Then 19: the run holds the saga exclusively (claim and live lease) through its step and
    # finish, and mark_published knows what it finished. Now 15 (+2 per batch): the claim's
    # check is its update's filter (no read of the saga), the queue entry is taken in one
    # command, an exclusive finish is not written again when published, and the claim and
    # outbox entry go in batches.
    assert counts.total("sagas", "find") == 0
    assert counts.total("sagas", "update") <= 3
    assert counts.total("saga_outbox", "find") <= 1  # the claim's look for a cancel (Dekker)
    assert counts.total("saga_queue", "find") <= 2  # one per pass: none per round
    assert counts.total("slots", "find") <= 1  # the pass's read serves its reservation
    # The claim takes the queue entry; the exclusive finish knows there is none left.
    assert counts.total("saga_queue", "findAndModify") == 1
    assert counts.total("saga_queue", "delete") == 0
    assert per_execution <= 15


async def test_a_finish_by_another_process_is_still_repaired_by_mark_published(
    coordinator: Coordinator,
) -> None:
    """``mark_published`` without this process's finish in memory (an outbox sweep, another
    instance) reads the outbox entry and completes a saga its finisher left half-done."""
    c = coordinator
    assert await c.saga.accept(_request("ex-sweep"))
    other = MongoSagaStore(c.db["sagas"])  # another instance, with nothing in memory
    event = {"event_id": "e-1", "event_type": "execution.failed", "execution_id": "ex-sweep"}
    assert await other.finish("ex-sweep", SagaStatus.FAILED, event, error="lost")
    # The finisher stopped after its outbox entry: put the saga back as it would have stood.
    await c.db["sagas"].update_one({"_id": "ex-sweep"}, {"$set": {"status": "queued"}})

    await c.store.mark_published("ex-sweep")

    doc = await c.db["sagas"].find_one({"_id": "ex-sweep"})
    assert doc is not None
    assert (doc["status"], doc["error"]) == ("failed", "lost")
    assert await c.db["saga_outbox"].find_one({"_id": "ex-sweep"}) is None


async def test_a_lapsed_exclusive_hold_reads_before_writing(coordinator: Coordinator) -> None:
    """Past ``exclusive_until`` (a long run, a stalled process: a recoverer may have ended the
    saga) the step and the finish read first, and neither moves an ended saga."""
    c = coordinator
    assert await c.saga.accept(_request("ex-lapsed"))
    lease_until = datetime.now(UTC) + POLICY.lease
    assert await c.store.claim_queued("ex-lapsed", OWNER, lease_until)
    assert await MongoSagaStore(c.db["sagas"]).finish(
        "ex-lapsed", SagaStatus.FAILED, {"event_id": "e-2"}, error="recovered elsewhere"
    )
    await c.db["saga_outbox"].delete_one({"_id": "ex-lapsed"})  # published since
    lapsed = datetime.now(UTC) - timedelta(seconds=1)

    await c.store.record_step("ex-lapsed", "run", SagaStatus.RUNNING, exclusive_until=lapsed)
    finished = await c.store.finish(
        "ex-lapsed", SagaStatus.COMPLETED, {"event_id": "e-3"}, exclusive_until=lapsed
    )

    assert finished is False
    doc = await c.db["sagas"].find_one({"_id": "ex-lapsed"})
    assert doc is not None
    assert (doc["status"], doc["error"]) == ("failed", "recovered elsewhere")
    assert "run" not in doc["steps"]


async def test_a_stale_read_of_the_slots_never_takes_one_over_the_limit(
    coordinator: Coordinator,
) -> None:
    """``reserve`` from a read made before other instances filled the pool: every insert
    collides (unique slot ids), so it answers FULL and the pool stays at its size."""
    c = coordinator
    stale = await c.slots.held_slots()
    lease_until = datetime.now(UTC) + POLICY.lease
    for i in range(8):
        reserved = await c.slots.reserve(
            f"ex-fill-{i}", f"user-{i}", "coordinator-b", lease_until, 4
        )
        assert reserved is Reservation.RESERVED

    late = await c.slots.reserve("ex-late", "user-late", OWNER, lease_until, 4, seen=stale)

    assert late is Reservation.FULL
    assert await c.db["slots"].count_documents({}) == 8
    assert await c.db["slots"].count_documents({"execution_id": "ex-late"}) == 0
    assert stale == HeldSlots(taken=frozenset(), live_by_user={})
