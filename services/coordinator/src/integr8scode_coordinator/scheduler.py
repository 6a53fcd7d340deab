"""Admission and the background loops of one coordinator instance.

- admit: takes queued sagas oldest first, reserves a cluster slot (global limit, per-user cap)
  and claims the saga; a user at their cap does not block the others behind them;
- heartbeat: renews the slot leases of this instance's runs and picks up cancel requests made
  through another instance;
- janitor: recovers the executions of slots whose lease ran out (a crashed coordinator): one
  instance wins each take-over (a unique insert), then reserved sagas go back to the queue,
  running ones are failed — their sandbox died with the owner — and the slot is freed. It reads
  only the small ``slots`` collection, not the history of sagas;
- outbox: republishes terminal events that a crash or a Kafka outage left unpublished.

Traces: every pass runs ``untraced`` (a poll is housekeeping, not a root trace of its own);
what a pass does for one execution (its admission, a cancel while queued, failing a lost run,
requeueing it) continues that execution's stored trace (``resume_trace``; admission_spans.py).
A saga's run starts from a clean context: it continues the request's trace itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry import trace

from integr8scode_coordinator.admission_spans import ADMIT_OUTCOME, admission_spans
from integr8scode_coordinator.domain.errors import StoreUnavailableError
from integr8scode_coordinator.domain.ports import (
    HeldSlot,
    HeldSlots,
    Reservation,
    SagaStore,
    SlotPool,
)
from integr8scode_coordinator.domain.saga import Saga, SagaStatus
from integr8scode_coordinator.orchestrator import ExecutionSaga, RunPolicy
from integr8scode_telemetry import resume_trace, untraced_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerTiming:
    poll_interval_s: float = 0.5
    outbox_interval_s: float = 5.0
    outbox_delay_s: float = 5.0


@dataclass
class _Run:
    task: asyncio.Task[SagaStatus]
    cancel: asyncio.Event


class Scheduler:
    def __init__(
        self,
        *,
        saga: ExecutionSaga,
        store: SagaStore,
        slots: SlotPool,
        policy: RunPolicy,
        local_capacity: int,
        tracer: trace.Tracer,
        timing: SchedulerTiming | None = None,
    ) -> None:
        self._saga = saga
        self._tracer = tracer
        self._store = store
        self._slots = slots
        self._policy = policy
        self._capacity = local_capacity
        self._timing = timing or SchedulerTiming()
        self._runs: dict[str, _Run] = {}
        # Reserved but not started yet: their slot leases are renewed too (a slow store during
        # reserve → claim → start must not let the janitor take a run that is about to start).
        self._admitting: set[str] = set()
        self._slots_read: HeldSlots | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def running(self) -> list[str]:
        return list(self._runs)

    def wake(self) -> None:
        """Something was queued or a slot freed: look at the queue now."""
        self._wake.set()

    def cancel_local(self, execution_id: str) -> bool:
        """Kill a run of this instance; False if it does not run here."""
        run = self._runs.get(execution_id)
        if run is None:
            return False
        run.cancel.set()
        return True

    async def run(self) -> None:
        """All loops, until ``stop()``."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._loop("admit", self._admit, None))
            heartbeat = self._policy.lease.total_seconds() / 3
            group.create_task(self._loop("heartbeat", self._heartbeat, heartbeat))
            group.create_task(self._loop("janitor", self._janitor, heartbeat))
            group.create_task(self._loop("outbox", self._outbox, self._timing.outbox_interval_s))

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def drain(self, grace_s: float) -> None:
        """Let runs in progress finish within ``grace_s``; then cancel them. A cancelled run
        keeps its lease until it expires, and the janitor of a live instance fails it then."""
        tasks = [r.task for r in self._runs.values()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _loop(
        self, name: str, body: Callable[[], Awaitable[None]], interval_s: float | None
    ) -> None:
        while not self._stopping.is_set():
            try:
                await body()
            except StoreUnavailableError as exc:
                log.warning("scheduler %s: %s", name, exc)
            except Exception:
                # Outermost loop: log and keep going; each iteration is idempotent.
                log.exception("scheduler %s failed; continuing", name)
            if interval_s is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._timing.poll_interval_s)
                self._wake.clear()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), interval_s)

    @untraced_task
    async def _admit(self) -> None:
        """Fill free local capacity from the queue, fairly: users are served in rounds by how
        many executions they run cluster-wide (none first, then one, ...), oldest first within a
        round. One user's backlog, however long, can't keep the freed slots from the others: a
        newcomer's run waits at most for one run to end. Each round reads only the queued sagas
        of users at or below its level (``exclude_users``), so a backlog that fills the read
        window never hides anyone.

        The queue is read first, whole: an empty queue ends the pass at one read (most passes
        under load: each run's end wakes one), and a queue shorter than the read window is
        every queued saga, so the rounds filter it in hand instead of reading it again. A saga
        queued meanwhile wakes a pass of its own."""
        free = self._capacity - len(self._runs)
        if free <= 0 or self._stopping.is_set():
            return
        queue = await _PassQueue.read(self._store, window=max(16, free * 4))
        if queue.empty:
            return
        capped: set[str] = set()  # at their cap: left out of every further read
        tried: set[str] = set()  # one attempt per saga and pass (a lost claim isn't retried)
        slots = await self._slots.held_slots()
        self._slots_read = slots  # the first reservation of the pass starts from it
        held = dict(slots.live_by_user)
        level = 0
        while True:
            free = self._capacity - len(self._runs)
            if free <= 0 or self._stopping.is_set():
                return
            limit = max(16, free * 4)
            above = {user for user, count in held.items() if count > level}
            batch = await queue.batch(limit, exclude_users=capped | above)
            progressed = await self._admit_round(batch, held, level, capped, tried)
            if progressed is None:
                return  # the cluster or this instance is full
            if queue.may_hold_more(batch, limit) and progressed:
                continue  # this round may have more than one read holds
            # Every queued saga of this round was seen: the next round, if anyone is left.
            higher = [count for count in held.values() if count > level]
            if not higher:
                return
            level = min(higher)

    async def _admit_round(
        self, batch: list[Saga], held: dict[str, int], level: int, capped: set[str], tried: set[str]
    ) -> bool | None:
        """Try the sagas of one round in fair order; whether any attempt got anywhere (None:
        no room is left, locally or in the cluster)."""
        progressed = False
        for saga in fair_order(batch, held):
            if len(self._runs) >= self._capacity:
                return None
            if held.get(saga.user_id, 0) > level or saga.execution_id in tried:
                continue  # admitted enough this round (in a later one), or tried already
            tried.add(saga.execution_id)
            if saga.cancel_requested:
                with resume_trace(saga.trace.span_context):
                    await self._saga.cancel_queued(saga, cancelled_by="user")
                progressed = True
                continue
            self._admitting.add(saga.execution_id)
            try:
                outcome = await self._reserve_and_claim(saga)
            finally:
                self._admitting.discard(saga.execution_id)
            if outcome is Reservation.FULL:
                return None
            progressed = True
            if outcome is Reservation.USER_LIMIT:
                capped.add(saga.user_id)
                continue
            if outcome is None:
                continue  # the claim went to another instance
            held[saga.user_id] = held.get(saga.user_id, 0) + 1
            self._start(saga)
        return progressed

    async def _reserve_and_claim(self, saga: Saga) -> Reservation | None:
        """A slot, then the saga's claim: RESERVED when both are ours (None: the claim was
        lost and the slot given back). An attempt that gets no slot stays untraced (it repeats
        every pass while the cluster is full); one that does is traced in the execution's
        trace from the reservation on (admission_spans.py)."""
        started_ns = time.time_ns()
        lease_until = datetime.now(UTC) + self._policy.lease
        # The pass's read of the slots, made just before, serves its first reservation only:
        # later ones read afresh, as other instances reserve and release meanwhile.
        fresh, self._slots_read = self._slots_read, None
        reservation = await self._slots.reserve(
            saga.execution_id,
            saga.user_id,
            self._saga.instance_id,
            lease_until,
            self._policy.per_user,
            seen=fresh,
        )
        if reservation is not Reservation.RESERVED:
            return reservation
        with admission_spans(self._tracer, saga, self._saga.instance_id, started_ns) as span:
            if not await self._store.claim_queued(
                saga.execution_id, self._saga.instance_id, lease_until
            ):
                span.set_attribute(ADMIT_OUTCOME, "claim_lost")
                await self._slots.release(saga.execution_id, self._saga.instance_id)
                return None
            span.set_attribute(ADMIT_OUTCOME, "admitted")
        # What the claim stored: the run knows it holds the saga exclusively until then.
        saga.owner, saga.lease_until = self._saga.instance_id, lease_until
        return Reservation.RESERVED

    def _start(self, saga: Saga) -> None:
        cancel = asyncio.Event()
        # A clean context, not the pass's (untraced): the run continues the request's trace.
        task = asyncio.create_task(
            self._saga.run(saga, cancel),
            name=f"saga-{saga.execution_id}",
            context=contextvars.Context(),
        )
        self._runs[saga.execution_id] = _Run(task, cancel)

        def done(finished: asyncio.Task[SagaStatus]) -> None:
            self._runs.pop(saga.execution_id, None)
            self._wake.set()
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                # The saga could not be ended (the store is down): its slot was kept, its lease
                # lapses without this instance's heartbeat, and a janitor ends it later.
                log.error(
                    "saga %s could not be ended (%s: %s); left to the janitor",
                    saga.execution_id,
                    type(exc).__name__,
                    exc,
                )

        task.add_done_callback(done)

    @untraced_task
    async def _heartbeat(self) -> None:
        ids = [*self._runs, *self._admitting]
        if not ids:
            return
        lease_until = datetime.now(UTC) + self._policy.lease
        await self._slots.renew(self._saga.instance_id, ids, lease_until)
        cancelled = await self._store.cancel_requested(self._saga.instance_id, ids)
        for execution_id in cancelled:
            self.cancel_local(execution_id)

    @untraced_task
    async def _janitor(self) -> None:
        now = datetime.now(UTC)
        expired = await self._slots.expired(now, limit=50)
        for slot in expired:
            if slot.execution_id in self._runs or slot.execution_id in self._admitting:
                continue  # ours: the heartbeat is late, not dead
            if not await self._store.take_over(slot.execution_id, slot.lease_until):
                continue  # another instance recovers this one
            # A recoverer that dies now leaves a slot that expires again, for another to take.
            if not await self._slots.prolong(slot, now + self._policy.lease):
                continue  # renewed or released since we read it: its holder is alive
            await self._recover(slot)

    async def _recover(self, slot: HeldSlot) -> None:
        saga = await self._store.get(slot.execution_id)
        if saga is None:
            await self._slots.release(slot.execution_id, slot.owner)  # nothing left to recover
            return
        # Recovering one execution is work for it: its spans go into its trace.
        with resume_trace(saga.trace.span_context):
            await self._recover_saga(slot, saga)

    async def _recover_saga(self, slot: HeldSlot, saga: Saga) -> None:
        # Still queued: the holder may have inserted its claim and then failed (the store went
        # away mid-claim); ``requeue`` drops that claim only if it is the holder's, so the saga
        # can be claimed again instead of staying queued behind a claim nobody will finish.
        holders = saga.owner == slot.owner or saga.status is SagaStatus.QUEUED
        if holders and not saga.status.terminal:
            if saga.status is SagaStatus.RUNNING:
                log.warning("failing %s: its coordinator was lost mid-run", saga.execution_id)
                await self._saga.fail_lost(saga)
            elif await self._store.requeue(saga.execution_id, slot.owner):
                log.warning("requeued %s after its coordinator was lost", saga.execution_id)
                self.wake()
        # Otherwise the slot outlived its use (its holder lost the claim, or the saga ended).
        await self._slots.release(slot.execution_id, slot.owner)

    @untraced_task
    async def _outbox(self) -> None:
        older_than = datetime.now(UTC) - timedelta(seconds=self._timing.outbox_delay_s)
        unpublished = await self._store.unpublished_terminal(older_than)
        for event in unpublished:
            await self._saga.republish(event)


@dataclass
class _PassQueue:
    """The queue as one admission pass reads it: first with no user left out, up to ``window``
    sagas. Shorter than that, it is every queued saga, and each round filters it in hand;
    otherwise a round reads again, leaving out the users above its level (the first round of
    a pass that leaves out nobody uses the first read)."""

    store: SagaStore
    window: int
    queued: list[Saga]
    whole: bool
    first_unused: bool = True

    @classmethod
    async def read(cls, store: SagaStore, window: int) -> _PassQueue:
        queued = await store.oldest_queued(limit=window)
        return cls(store, window, queued, whole=len(queued) < window)

    @property
    def empty(self) -> bool:
        return not self.queued

    async def batch(self, limit: int, exclude_users: set[str]) -> list[Saga]:
        if self.whole:
            return [s for s in self.queued if s.user_id not in exclude_users]
        first_unused, self.first_unused = self.first_unused, False
        if first_unused and not exclude_users and limit == self.window:
            return self.queued
        return await self.store.oldest_queued(limit=limit, exclude_users=exclude_users)

    def may_hold_more(self, batch: list[Saga], limit: int) -> bool:
        """Whether queued sagas of this round may lie past ``batch`` (it filled its read)."""
        return not self.whole and len(batch) == limit


def fair_order(queued: Sequence[Saga], held: dict[str, int]) -> Iterator[Saga]:
    """Queued sagas in admission order: the user running the fewest executions cluster-wide
    goes first, oldest first among equals, counting each admission as it happens (``held`` is
    updated by the caller). So one user's backlog can't keep the slots that free up from
    everybody else: another user's run waits at most for one of theirs to end.

    A saga the caller skips (at its user's cap) doesn't hold up the others."""
    pending = list(queued)  # oldest first, as the store returns them
    while pending:
        saga = min(pending, key=lambda s: held.get(s.user_id, 0))  # min keeps the oldest of ties
        pending.remove(saga)
        yield saga
