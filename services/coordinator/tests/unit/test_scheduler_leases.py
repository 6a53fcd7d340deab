"""Scheduler leases: heartbeat, janitor (recovery from a dead instance, driven by expired slot
leases), outbox, local cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from integr8scode_coordinator.domain.saga import SagaStatus
from integr8scode_coordinator.scheduler import SchedulerTiming
from integr8scode_events import ExecutionCancelled, ExecutionCompleted, ExecutionFailed

if TYPE_CHECKING:
    from conftest import Harness

DEAD = "coordinator-dead"
ALIVE = "coordinator-b"


def _now() -> datetime:
    return datetime.now(UTC)


def _orphan(
    harness: Harness, execution_id: str, status: SagaStatus, owner: str, lease: datetime
) -> None:
    """A saga and its slot, held by ``owner`` until ``lease``."""
    request = harness.request(execution_id, user_id=f"user-{execution_id}")
    harness.saga_doc(request, status, owner=owner, lease_until=lease)
    harness.slots.hold(execution_id, request.user_id, owner, lease)


async def test_janitor_requeues_reserved_and_fails_running_sagas_of_a_dead_instance(
    harness: Harness,
) -> None:
    past, future = _now() - timedelta(seconds=30), _now() + timedelta(seconds=30)
    _orphan(harness, "ex-reserved", SagaStatus.RESERVED, DEAD, past)
    _orphan(harness, "ex-running", SagaStatus.RUNNING, DEAD, past)
    _orphan(harness, "ex-alive", SagaStatus.RUNNING, ALIVE, future)
    scheduler = harness.scheduler()

    await scheduler._janitor()

    requeued = harness.store.sagas["ex-reserved"]
    assert (requeued.status, requeued.owner, requeued.lease_until) == (
        SagaStatus.QUEUED,
        None,
        None,
    )
    assert requeued.steps[-1] == "requeue"
    assert harness.publisher.of("ex-reserved") == []
    failed = harness.store.sagas["ex-running"]
    assert failed.status is SagaStatus.FAILED
    assert failed.error is not None
    assert "coordinator" in failed.error
    [event] = harness.publisher.of("ex-running")
    assert isinstance(event, ExecutionFailed)
    assert event.payload.error_type == "platform_error"
    assert event.payload.error == failed.error
    assert harness.slots.held == {"ex-alive"}
    assert set(harness.slots.released) == {"ex-reserved", "ex-running"}
    alive = harness.store.sagas["ex-alive"]
    assert (alive.status, alive.owner) == (SagaStatus.RUNNING, ALIVE)

    # The requeued saga runs again, here.
    await scheduler._admit()
    await harness.settle()
    assert harness.store.status("ex-reserved") is SagaStatus.COMPLETED
    assert [r.execution_id for r in harness.runner.requests] == ["ex-reserved"]


async def test_janitor_skips_the_runs_of_its_own_instance(harness: Harness) -> None:
    harness.runner.hold = asyncio.Event()
    [mine] = harness.queue("user-1", 1, _now())
    scheduler = harness.scheduler()
    await scheduler._admit()
    await harness.runner.wait_started(mine)
    slot = harness.slots.holder(mine)
    assert slot is not None
    slot.lease_until = _now() - timedelta(seconds=1)  # a late heartbeat

    await scheduler._janitor()

    saga = harness.store.sagas[mine]
    assert (saga.status, saga.owner) == (SagaStatus.RUNNING, harness.saga.instance_id)
    assert harness.publisher.terminal(mine) == []
    await harness.settle()
    assert harness.store.status(mine) is SagaStatus.COMPLETED


async def test_janitor_leaves_sagas_another_instance_took_over(harness: Harness) -> None:
    past = _now() - timedelta(seconds=5)
    _orphan(harness, "ex-taken", SagaStatus.RUNNING, DEAD, past)
    scheduler = harness.scheduler()
    # Another instance's janitor won the take-over of this expired lease first.
    assert await harness.store.take_over("ex-taken", past) is True

    await scheduler._janitor()

    assert harness.store.status("ex-taken") is SagaStatus.RUNNING
    assert harness.slots.held == {"ex-taken"}
    assert harness.publisher.events == []


async def test_janitor_frees_a_slot_whose_holder_lost_the_claim(harness: Harness) -> None:
    # A dead instance reserved a slot, lost the claim to a live one and died before releasing.
    request = harness.request("ex-shared", user_id="user-1")
    harness.saga_doc(request, SagaStatus.RUNNING, owner=ALIVE, lease_until=_now())
    harness.slots.hold("ex-shared", "user-1", ALIVE, _now() + timedelta(seconds=30))
    harness.slots.hold("ex-shared", "user-1", DEAD, _now() - timedelta(seconds=5))

    await harness.scheduler()._janitor()

    assert harness.store.status("ex-shared") is SagaStatus.RUNNING
    assert harness.publisher.events == []
    [slot] = [s for s in harness.slots.slots if s.execution_id == "ex-shared"]
    assert slot.owner == ALIVE


async def test_a_recovery_whose_janitor_died_is_picked_up_again(harness: Harness) -> None:
    past = _now() - timedelta(seconds=5)
    _orphan(harness, "ex-twice", SagaStatus.RUNNING, DEAD, past)
    [stale] = await harness.slots.expired(_now(), limit=10)
    # A first janitor won the take-over, prolonged the slot, and died before recovering it.
    assert await harness.store.take_over("ex-twice", past)
    assert await harness.slots.prolong(stale, _now() - timedelta(seconds=1))

    await harness.scheduler()._janitor()

    assert harness.store.status("ex-twice") is SagaStatus.FAILED
    assert len(harness.publisher.terminal("ex-twice")) == 1
    assert harness.slots.held == set()


async def test_heartbeat_renews_the_leases_of_local_runs(harness: Harness) -> None:
    harness.runner.hold = asyncio.Event()
    ids = harness.queue("user-1", 2, _now())
    scheduler = harness.scheduler()
    await scheduler._admit()
    soon = _now() + timedelta(seconds=1)
    for execution_id in ids:
        slot = harness.slots.holder(execution_id)
        assert slot is not None
        slot.lease_until = soon

    before = _now()
    await scheduler._heartbeat()

    expected = before + harness.policy.lease
    for execution_id in ids:
        slot = harness.slots.holder(execution_id)
        assert slot is not None
        assert slot.lease_until is not None
        assert slot.lease_until >= expected
    await harness.settle()


async def test_heartbeat_kills_runs_whose_cancel_was_requested_elsewhere(
    harness: Harness,
) -> None:
    harness.runner.hold = asyncio.Event()
    keep, kill = harness.queue("user-1", 2, _now())
    scheduler = harness.scheduler()
    await scheduler._admit()
    await harness.runner.wait_started(kill)
    await harness.store.request_cancel(kill)  # the cancel request reached another instance

    await scheduler._heartbeat()

    assert harness.runner.cancels[kill].is_set()
    assert not harness.runner.cancels[keep].is_set()
    await harness.settle()
    assert harness.store.status(kill) is SagaStatus.CANCELLED
    assert harness.store.status(keep) is SagaStatus.COMPLETED
    [cancelled] = harness.publisher.terminal(kill)
    assert isinstance(cancelled, ExecutionCancelled)
    assert cancelled.payload.was_running is True


async def test_heartbeat_without_runs_touches_nothing(harness: Harness) -> None:
    _orphan(harness, "ex-other", SagaStatus.RUNNING, ALIVE, _now() + timedelta(seconds=3))
    slot = harness.slots.holder("ex-other")
    assert slot is not None
    lease = slot.lease_until

    await harness.scheduler()._heartbeat()

    assert slot.lease_until == lease


async def test_cancel_local(harness: Harness) -> None:
    harness.runner.hold = asyncio.Event()
    [running] = harness.queue("user-1", 1, _now())
    scheduler = harness.scheduler()
    await scheduler._admit()
    await harness.runner.wait_started(running)

    assert scheduler.cancel_local("ex-not-here") is False
    assert scheduler.cancel_local(running) is True

    await harness.settle()
    assert harness.store.status(running) is SagaStatus.CANCELLED
    assert harness.slots.held == set()


async def test_outbox_republishes_terminal_events_left_unpublished(harness: Harness) -> None:
    harness.publisher.failing = {"execution.completed"}
    [execution_id] = harness.queue("user-1", 1, _now())
    patient = harness.scheduler()  # default delay: leaves events of fresh runs to their run
    eager = harness.scheduler(timing=SchedulerTiming(outbox_delay_s=-1))
    await patient._admit()
    await harness.settle()
    assert harness.store.status(execution_id) is SagaStatus.COMPLETED
    stored_id = harness.store.terminal_events[execution_id]["event_id"]

    harness.publisher.failing = set()
    await patient._outbox()
    assert harness.publisher.terminal(execution_id) == []

    await eager._outbox()
    await eager._outbox()

    [completed] = harness.publisher.terminal(execution_id)
    assert isinstance(completed, ExecutionCompleted)
    assert str(completed.event_id) == stored_id
    assert harness.store.published == {execution_id}


async def test_outbox_keeps_an_event_the_broker_still_refuses(harness: Harness) -> None:
    harness.publisher.failing = {"execution.completed"}
    [execution_id] = harness.queue("user-1", 1, _now())
    scheduler = harness.scheduler(timing=SchedulerTiming(outbox_delay_s=-1))
    await scheduler._admit()
    await harness.settle()

    await scheduler._outbox()

    assert harness.store.status(execution_id) is SagaStatus.COMPLETED
    assert harness.store.published == set()
    assert len(await harness.store.unpublished_terminal(_now() + timedelta(seconds=1))) == 1


async def test_drain_cancels_runs_past_the_grace_and_leaves_them_to_the_janitor(
    harness: Harness,
) -> None:
    harness.runner.hold = asyncio.Event()
    [execution_id] = harness.queue("user-1", 1, _now())
    scheduler = harness.scheduler()
    await scheduler._admit()
    await harness.runner.wait_started(execution_id)

    await scheduler.drain(grace_s=0)

    assert scheduler.running == []
    # No terminal state, and the slot stays: it is how a live instance finds the lost run.
    assert harness.store.status(execution_id) is SagaStatus.RUNNING
    assert harness.publisher.terminal(execution_id) == []
    slot = harness.slots.holder(execution_id)
    assert slot is not None
    slot.lease_until = _now() - timedelta(seconds=1)  # nobody renews it any more

    await harness.scheduler()._janitor()

    assert harness.store.status(execution_id) is SagaStatus.FAILED
    assert len(harness.publisher.terminal(execution_id)) == 1
    assert harness.slots.held == set()


async def test_a_run_whose_saga_cant_be_ended_keeps_its_slot_for_the_janitor(
    harness: Harness,
) -> None:
    # The store fails through the run's end and its compensation (a Mongo-wire crash).
    [execution_id] = harness.queue("user-1", 1, _now())
    harness.store.fail_finish = True
    scheduler = harness.scheduler()

    await scheduler._admit()
    await harness.settle()

    assert harness.store.status(execution_id) is SagaStatus.RUNNING
    assert execution_id in harness.slots.held  # released, it would strand the saga
    harness.store.fail_finish = False
    slot = harness.slots.holder(execution_id)
    assert slot is not None
    slot.lease_until = _now() - timedelta(seconds=1)

    await scheduler._janitor()

    assert harness.store.status(execution_id) is SagaStatus.FAILED
    assert len(harness.publisher.terminal(execution_id)) == 1
    assert harness.slots.held == set()


async def test_a_claim_left_by_a_failed_claimer_is_cleared_by_the_janitor(
    harness: Harness,
) -> None:
    # A dead instance reserved a slot and inserted its claim, then the store went away before
    # it moved the saga: the saga reads queued, and the leftover claim refuses every claimer.
    request = harness.request("ex-stale", user_id="user-1")
    harness.saga_doc(request, SagaStatus.QUEUED)
    harness.store.stale_claims["ex-stale"] = DEAD
    harness.slots.hold("ex-stale", "user-1", DEAD, _now() - timedelta(seconds=5))
    scheduler = harness.scheduler()

    await scheduler._admit()
    assert scheduler.running == []  # blocked by the leftover claim

    await scheduler._janitor()  # the dead holder's slot expired: its claim goes with it
    await scheduler._admit()
    await harness.settle()

    assert harness.store.status("ex-stale") is SagaStatus.COMPLETED
    assert [r.execution_id for r in harness.runner.requests] == ["ex-stale"]
    assert harness.slots.held == set()


async def test_a_claim_of_another_live_claimer_is_left_alone(harness: Harness) -> None:
    # The expired slot is the dead instance's, but the claim belongs to a live one.
    request = harness.request("ex-live-claim", user_id="user-1")
    harness.saga_doc(request, SagaStatus.QUEUED)
    harness.store.stale_claims["ex-live-claim"] = ALIVE
    harness.slots.hold("ex-live-claim", "user-1", DEAD, _now() - timedelta(seconds=5))

    await harness.scheduler()._janitor()

    assert harness.store.stale_claims == {"ex-live-claim": ALIVE}
    assert harness.slots.held == set()  # the dead holder's slot is freed all the same


async def test_a_reservation_whose_claim_is_slow_keeps_its_lease(harness: Harness) -> None:
    # The store answers slowly between reserve and start: the heartbeat renews the reserved
    # slot, and the janitor leaves it alone (it would requeue a run that is about to start).
    [execution_id] = harness.queue("user-1", 1, _now())
    harness.store.claim_gate = asyncio.Event()
    scheduler = harness.scheduler()
    admitting = asyncio.create_task(scheduler._admit())
    for _ in range(100):
        if harness.slots.holder(execution_id) is not None:
            break
        await asyncio.sleep(0)
    slot = harness.slots.holder(execution_id)
    assert slot is not None
    slot.lease_until = _now() - timedelta(seconds=1)  # the claim took longer than the lease

    await scheduler._janitor()
    assert harness.store.status(execution_id) is SagaStatus.QUEUED  # not requeued or failed
    await scheduler._heartbeat()
    assert slot.lease_until > _now()  # renewed though not started yet

    harness.store.claim_gate.set()
    await admitting
    await harness.settle()
    assert harness.store.status(execution_id) is SagaStatus.COMPLETED
    assert [r.execution_id for r in harness.runner.requests] == [execution_id]
