"""Scheduler._admit: fair share (fewest running first, then oldest), per-user cap, global slots,
local capacity, queued cancels.

Each test drives one admission pass by hand; runs are held open (``runner.hold``) so what was
admitted stays visible in ``scheduler.running``, then ``settle`` lets them finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from integr8scode_coordinator.domain.ports import HeldSlots
from integr8scode_coordinator.domain.saga import Saga, SagaStatus
from integr8scode_events import ExecutionCancelled

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness

T0 = datetime(2030, 1, 1, tzinfo=UTC)


async def test_admits_the_oldest_first(harness: Harness) -> None:
    harness.runner.hold = asyncio.Event()
    for name, offset in (("late", 30), ("first", 0), ("middle", 10), ("second", 5)):
        request = harness.request(name, user_id=f"user-{name}")
        harness.saga_doc(request, enqueued_at=T0 + timedelta(seconds=offset))
    scheduler = harness.scheduler(local_capacity=3)

    await scheduler._admit()

    assert scheduler.running == ["first", "second", "middle"]
    assert harness.store.status("late") is SagaStatus.QUEUED
    for execution_id in scheduler.running:
        saga = harness.store.sagas[execution_id]
        assert saga.status in {SagaStatus.RESERVED, SagaStatus.RUNNING}
        assert saga.owner == harness.saga.instance_id
        assert execution_id in harness.slots.held
    await harness.settle()
    assert harness.slots.held == set()


async def test_a_user_at_the_cap_does_not_block_the_users_behind(
    make_harness: MakeHarness,
) -> None:
    harness = make_harness(per_user=2)
    harness.runner.hold = asyncio.Event()
    heavy = harness.queue("heavy", 3, T0)
    light = harness.queue("light", 1, T0 + timedelta(minutes=1))
    scheduler = harness.scheduler(local_capacity=8)

    await scheduler._admit()

    # Fair share: light goes as soon as heavy runs more than light does.
    assert scheduler.running == [heavy[0], *light, heavy[1]]
    assert harness.store.status(heavy[2]) is SagaStatus.QUEUED
    await harness.settle()


async def test_a_long_queue_of_one_user_at_the_cap_does_not_starve_the_others(
    make_harness: MakeHarness,
) -> None:
    # More queued sagas of one capped user than one read of the queue returns.
    harness = make_harness(per_user=2)
    harness.runner.hold = asyncio.Event()
    heavy = harness.queue("heavy", 60, T0)
    light = harness.queue("light", 2, T0 + timedelta(hours=1))
    scheduler = harness.scheduler(local_capacity=4)

    await scheduler._admit()

    assert scheduler.running == [heavy[0], light[0], heavy[1], light[1]]
    await harness.settle()


async def test_one_users_backlog_does_not_keep_the_slots_from_another_user(
    make_harness: MakeHarness,
) -> None:
    # The per-user cap equals the capacity: FIFO would give all four slots to the backlog.
    harness = make_harness(per_user=4)
    harness.runner.hold = asyncio.Event()
    backlog = harness.queue("backlog", 6, T0)
    other = harness.queue("other", 1, T0 + timedelta(minutes=1))
    scheduler = harness.scheduler(local_capacity=4)

    await scheduler._admit()

    assert scheduler.running == [backlog[0], other[0], backlog[1], backlog[2]]
    await harness.settle()


async def test_users_already_running_elsewhere_count_for_the_order(
    make_harness: MakeHarness,
) -> None:
    # Another instance runs two of "busy"'s executions: "idle" goes first though it came later.
    harness = make_harness(per_user=4)
    harness.runner.hold = asyncio.Event()
    for i in range(2):
        harness.slots.hold(f"elsewhere-{i}", "busy", "other-instance", T0 + timedelta(days=3650))
    busy = harness.queue("busy", 1, T0)
    idle = harness.queue("idle", 1, T0 + timedelta(minutes=1))
    scheduler = harness.scheduler(local_capacity=1)

    await scheduler._admit()

    assert scheduler.running == idle
    assert harness.store.status(busy[0]) is SagaStatus.QUEUED
    await harness.settle()


async def test_a_full_pool_stops_admission(make_harness: MakeHarness) -> None:
    harness = make_harness(global_slots=2)
    harness.runner.hold = asyncio.Event()
    ids = [harness.queue(f"user-{i}", 1, T0 + timedelta(seconds=i))[0] for i in range(5)]
    scheduler = harness.scheduler(local_capacity=4)

    await scheduler._admit()

    assert scheduler.running == ids[:2]
    assert harness.slots.reserve_calls == ids[:3]  # the first refusal ends the pass
    assert all(harness.store.status(i) is SagaStatus.QUEUED for i in ids[2:])
    await harness.settle()


async def test_local_capacity_is_respected(harness: Harness) -> None:
    harness.runner.hold = asyncio.Event()
    ids = [harness.queue(f"user-{i}", 1, T0 + timedelta(seconds=i))[0] for i in range(3)]
    scheduler = harness.scheduler(local_capacity=1)

    await scheduler._admit()
    await scheduler._admit()

    assert scheduler.running == ids[:1]
    assert harness.slots.reserve_calls == ids[:1]
    assert len(harness.slots.held) == 1
    await harness.settle()


async def test_a_finished_run_frees_local_capacity_for_the_next(harness: Harness) -> None:
    ids = [harness.queue(f"user-{i}", 1, T0 + timedelta(seconds=i))[0] for i in range(2)]
    scheduler = harness.scheduler(local_capacity=1)

    await scheduler._admit()
    await harness.runner.wait_started(ids[0])
    await harness.settle()
    await scheduler._admit()
    await harness.settle()

    assert [r.execution_id for r in harness.runner.requests] == ids
    assert all(harness.store.status(i) is SagaStatus.COMPLETED for i in ids)


async def test_a_queued_saga_with_a_cancel_request_is_cancelled_not_run(
    harness: Harness,
) -> None:
    cancelled = harness.request("ex-cancel-me", user_id="user-1")
    harness.saga_doc(cancelled, enqueued_at=T0, cancel_requested=True)
    runnable = harness.queue("user-2", 1, T0 + timedelta(seconds=1))
    scheduler = harness.scheduler()

    await scheduler._admit()
    await harness.settle()

    assert harness.store.status("ex-cancel-me") is SagaStatus.CANCELLED
    [event] = harness.publisher.of("ex-cancel-me")
    assert isinstance(event, ExecutionCancelled)
    assert event.payload.was_running is False
    assert "ex-cancel-me" not in harness.slots.reserve_calls
    assert [r.execution_id for r in harness.runner.requests] == runnable


async def test_a_lost_claim_gives_the_slot_back(harness: Harness) -> None:
    harness.runner.hold = asyncio.Event()
    taken = harness.queue("user-1", 1, T0)[0]
    free = harness.queue("user-2", 1, T0 + timedelta(seconds=1))[0]
    harness.store.lost_claims.add(taken)  # another instance claims it between read and claim
    scheduler = harness.scheduler()

    await scheduler._admit()

    assert scheduler.running == [free]
    assert harness.slots.released == [taken]
    assert harness.slots.held == {free}
    await harness.settle()


async def test_a_stopping_scheduler_admits_nothing(harness: Harness) -> None:
    harness.queue("user-1", 1, T0)
    scheduler = harness.scheduler()
    scheduler.stop()

    await scheduler._admit()

    assert scheduler.running == []
    assert harness.slots.reserve_calls == []


async def test_an_admitted_run_knows_it_holds_its_saga_until_its_claim_lease(
    harness: Harness,
) -> None:
    harness.saga_doc(harness.request("ex-admit"))
    scheduler = harness.scheduler(local_capacity=1)
    before = datetime.now(UTC)

    await scheduler._admit()
    await harness.settle()

    # The lease the claim stored, less half a lease: both the run step and the finish got it.
    [step, finish] = harness.store.exclusive_untils
    assert step is not None
    assert step == finish
    lease = harness.policy.lease
    assert before + lease / 2 <= step <= datetime.now(UTC) + lease / 2
    assert harness.store.status("ex-admit") is SagaStatus.COMPLETED


def _count_reads(harness: Harness) -> dict[str, int]:
    """How often a pass reads the queue and the slots (the fakes' calls, counted)."""
    counts = {"oldest_queued": 0, "held_slots": 0}
    store, slots = harness.store, harness.slots
    read_queue, read_slots = store.oldest_queued, slots.held_slots

    async def oldest_queued(limit: int, exclude_users: Collection[str] = ()) -> list[Saga]:
        counts["oldest_queued"] += 1
        return await read_queue(limit, exclude_users)

    async def held_slots() -> HeldSlots:
        counts["held_slots"] += 1
        return await read_slots()

    store.oldest_queued = oldest_queued  # type: ignore[method-assign]
    slots.held_slots = held_slots  # type: ignore[method-assign]
    return counts


async def test_a_pass_over_an_empty_queue_reads_the_queue_once_and_no_slots(
    harness: Harness,
) -> None:
    counts = _count_reads(harness)

    await harness.scheduler()._admit()

    assert counts == {"oldest_queued": 1, "held_slots": 0}


async def test_a_short_queue_is_read_once_for_every_round_of_a_pass(harness: Harness) -> None:
    harness.runner.hold = asyncio.Event()
    # Three rounds: "idle" runs none, "one" runs one, "two" runs two (held by other instances).
    harness.slots.hold("elsewhere-1", "one", "coordinator-b", T0)
    for i in range(2):
        harness.slots.hold(f"elsewhere-2{i}", "two", "coordinator-b", T0)
    for offset, user in enumerate(("two", "one", "idle")):
        harness.saga_doc(
            harness.request(f"ex-{user}", user_id=user), enqueued_at=T0 + timedelta(seconds=offset)
        )
    counts = _count_reads(harness)
    scheduler = harness.scheduler(local_capacity=3)

    await scheduler._admit()

    assert scheduler.running == ["ex-idle", "ex-one", "ex-two"]  # fewest running first
    # The slots: the pass's read, which its first reservation uses; the later two read afresh.
    assert counts == {"oldest_queued": 1, "held_slots": 3}
    [first, *later] = harness.slots.reserve_reads
    assert first is not None
    assert later == [None, None]
    await harness.settle()


async def test_a_backlog_longer_than_the_read_window_is_read_round_by_round(
    harness: Harness,
) -> None:
    harness.runner.hold = asyncio.Event()
    heavy = harness.queue("heavy", 20, T0)
    light = harness.queue("light", 1, T0 + timedelta(minutes=1))
    counts = _count_reads(harness)
    scheduler = harness.scheduler(local_capacity=2)

    await scheduler._admit()

    # The light user's saga sits past the first window: a round of its own reads it.
    assert scheduler.running == [heavy[0], *light]
    assert counts["oldest_queued"] >= 2
    await harness.settle()
