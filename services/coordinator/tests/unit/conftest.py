"""In-memory fakes of the coordinator's ports, and a harness wiring them to a real saga.

The fakes keep the Mongo adapters' semantics (a claim or a finish succeeds once, a lease counts
only while it is in the future) so the saga and the scheduler can be driven step by step with
no infrastructure and no sleeps. Spans go to an in-memory exporter of a real SDK provider.

pytest imports this module under a name of its own, so test modules get these objects through
the fixtures and import the classes for type checking only (``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, SpanKind, Tracer

from integr8scode_coordinator.domain.errors import StoreUnavailableError
from integr8scode_coordinator.domain.ports import HeldSlot, HeldSlots, Reservation
from integr8scode_coordinator.domain.saga import (
    ExecutionRequest,
    Saga,
    SagaStatus,
)
from integr8scode_coordinator.handlers.requests import RequestHandlers
from integr8scode_coordinator.orchestrator import ExecutionSaga, RunPolicy
from integr8scode_coordinator.sandbox import (
    Outcome,
    Runtime,
    SandboxRequest,
    SandboxResult,
)
from integr8scode_coordinator.scheduler import Scheduler, SchedulerTiming
from integr8scode_events import (
    TERMINAL_EXECUTION_EVENTS,
    EventEnvelope,
    ProducerInfo,
    PublishedRecord,
    PublishError,
)
from integr8scode_events.kafka import MessageContext

INSTANCE = "coordinator-a"
PRODUCER = ProducerInfo(service="execution-coordinator", version="0.0.0-test")


def _now() -> datetime:
    return datetime.now(UTC)


def sandbox_result(
    outcome: Outcome = "completed",
    *,
    exit_code: int | None = 0,
    stdout: str = "45\n",
    stderr: str = "",
    error: str | None = None,
    signal: int | None = None,
    truncated: bool = False,
) -> SandboxResult:
    return SandboxResult(
        outcome=outcome,
        exit_code=exit_code,
        signal=signal,
        stdout=stdout,
        stderr=stderr,
        stdout_truncated=truncated,
        stderr_truncated=False,
        cpu_time_ms=12.0,
        wall_time_ms=34.0,
        peak_memory_kb=5678,
        error=error,
    )


# -- ports ---------------------------------------------------------------------------------------


class ClientSpans:
    """Opt-in (``client_tracer``): every call of a port method makes a CLIENT span
    ``mongo.<method>`` unless instrumentation is suppressed, as PyMongo's instrumentation does
    per command. So a test sees which store calls would show up in a trace, and in which."""

    client_tracer: Tracer | None = None

    def __getattribute__(self, name: str) -> Any:
        attribute = object.__getattribute__(self, name)
        tracer = object.__getattribute__(self, "client_tracer")
        if tracer is None or name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        async def traced(*args: Any, **kwargs: Any) -> Any:
            if not is_instrumentation_enabled():
                return await attribute(*args, **kwargs)
            with tracer.start_as_current_span(f"mongo.{name}", kind=SpanKind.CLIENT):
                return await attribute(*args, **kwargs)

        return traced


class FakeSagaStore(ClientSpans):
    """``SagaStore`` in a dict. Reads return copies, as documents read from Mongo would be."""

    def __init__(self) -> None:
        self.sagas: dict[str, Saga] = {}
        self.terminal_events: dict[str, dict[str, Any]] = {}
        self.published: set[str] = set()
        self.lost_claims: set[str] = set()  # claim_queued loses the race for these
        self.fail_finish = False  # finish raises, as with the Mongo-wire server down
        self.claim_gate: asyncio.Event | None = None  # claim_queued waits for it (a slow store)
        # Claims left behind by a claimer that failed after inserting them: execution → owner.
        self.stale_claims: dict[str, str] = {}
        self.takeovers: set[tuple[str, datetime]] = set()
        # ``exclusive_until`` of every record_step and finish, in call order.
        self.exclusive_untils: list[datetime | None] = []

    def put(self, saga: Saga) -> None:
        """Test setup: a saga in any state, as another instance may have left it."""
        self.sagas[saga.execution_id] = copy.deepcopy(saga)

    def status(self, execution_id: str) -> SagaStatus:
        return self.sagas[execution_id].status

    async def create(self, saga: Saga) -> bool:
        if saga.execution_id in self.sagas:
            return False
        self.put(saga)
        return True

    async def get(self, execution_id: str) -> Saga | None:
        saga = self.sagas.get(execution_id)
        return copy.deepcopy(saga) if saga else None

    async def oldest_queued(self, limit: int, exclude_users: Collection[str] = ()) -> list[Saga]:
        queued = sorted(
            (
                s
                for s in self.sagas.values()
                if s.status is SagaStatus.QUEUED and s.user_id not in exclude_users
            ),
            key=lambda s: s.enqueued_at,
        )
        return [copy.deepcopy(s) for s in queued[:limit]]

    async def claim_queued(self, execution_id: str, owner: str, lease_until: datetime) -> bool:
        if self.claim_gate is not None:
            await self.claim_gate.wait()
        saga = self.sagas.get(execution_id)
        if saga is None or saga.status is not SagaStatus.QUEUED:
            return False
        if execution_id in self.lost_claims:
            return False
        if self.stale_claims.get(execution_id, owner) != owner:
            return False  # somebody's claim is in the way (duplicate key on Mongo)
        self.stale_claims.pop(execution_id, None)  # our own leftover: we carry on with it
        saga.status, saga.owner, saga.lease_until = SagaStatus.RESERVED, owner, lease_until
        saga.steps.append("reserve_slot")
        return True

    async def record_step(
        self,
        execution_id: str,
        step: str,
        status: SagaStatus,
        *,
        exclusive_until: datetime | None = None,
        **fields: Any,
    ) -> None:
        self.exclusive_untils.append(exclusive_until)
        saga = self.sagas.get(execution_id)
        if saga is None or saga.status.terminal:
            return
        saga.status = status
        saga.steps.append(step)
        for name, value in fields.items():
            setattr(saga, name, value)

    async def finish(
        self,
        execution_id: str,
        status: SagaStatus,
        event: dict[str, Any],
        *,
        only_from: SagaStatus | None = None,
        error: str | None = None,
        steps: Sequence[str] = (),
        exclusive_until: datetime | None = None,
    ) -> bool:
        self.exclusive_untils.append(exclusive_until)
        if self.fail_finish:
            raise StoreUnavailableError("saga store unavailable: connection refused")
        saga = self.sagas.get(execution_id)
        if saga is None or saga.status.terminal:
            return False
        if only_from is not None and saga.status is not only_from:
            return False
        saga.status, saga.error, saga.finished_at = status, error, _now()
        saga.owner, saga.lease_until = None, None
        saga.steps.extend([*steps, f"finish:{status.value}"])
        self.terminal_events[execution_id] = copy.deepcopy(event)
        self.published.discard(execution_id)
        return True

    async def mark_published(self, execution_id: str) -> None:
        self.published.add(execution_id)

    async def unpublished_terminal(self, older_than: datetime) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(self.terminal_events[s.execution_id])
            for s in self.sagas.values()
            if s.status.terminal
            and s.execution_id in self.terminal_events
            and s.execution_id not in self.published
            and s.finished_at is not None
            and s.finished_at < older_than
        ]

    async def take_over(self, execution_id: str, expired_lease: datetime) -> bool:
        marker = (execution_id, expired_lease)
        if marker in self.takeovers:
            return False
        self.takeovers.add(marker)
        return True

    async def requeue(self, execution_id: str, owner: str) -> bool:
        saga = self.sagas.get(execution_id)
        if saga is None or (saga.owner or self.stale_claims.get(execution_id)) != owner:
            return False
        if saga.status not in (SagaStatus.QUEUED, SagaStatus.RESERVED):
            return False
        self.stale_claims.pop(execution_id, None)
        saga.status, saga.owner, saga.lease_until = SagaStatus.QUEUED, None, None
        saga.steps.append("requeue")
        return True

    async def request_cancel(self, execution_id: str) -> None:
        saga = self.sagas.get(execution_id)
        if saga is not None and not saga.status.terminal:
            saga.cancel_requested = True

    async def cancel_requested(self, owner: str, execution_ids: Sequence[str]) -> list[str]:
        return [
            execution_id
            for execution_id in execution_ids
            if (saga := self.sagas.get(execution_id)) is not None and saga.cancel_requested
        ]


@dataclass
class Slot:
    slot_id: str
    execution_id: str | None = None
    user_id: str | None = None
    owner: str | None = None
    lease_until: datetime | None = None


class FakeSlotPool(ClientSpans):
    """``SlotPool`` over a list of slots; records every call to ``reserve``. As on Mongo, a
    slot whose lease ran out stays taken until it is released (after its recovery)."""

    def __init__(self, size: int) -> None:
        self.slots = [Slot(f"slot-{i:04d}") for i in range(size)]
        self.reserve_calls: list[str] = []
        self.reserve_reads: list[HeldSlots | None] = []  # the ``seen`` each reserve was given
        self.released: list[str] = []

    def holder(self, execution_id: str) -> Slot | None:
        return next((s for s in self.slots if s.execution_id == execution_id), None)

    def hold(self, execution_id: str, user_id: str, owner: str, lease_until: datetime) -> None:
        """Test setup: a slot held by anyone, possibly with a lease in the past."""
        free = next(s for s in self.slots if s.execution_id is None)
        free.execution_id, free.user_id, free.owner = execution_id, user_id, owner
        free.lease_until = lease_until

    @property
    def held(self) -> set[str]:
        return {s.execution_id for s in self.slots if s.execution_id is not None}

    async def reserve(
        self,
        execution_id: str,
        user_id: str,
        owner: str,
        lease_until: datetime,
        per_user: int,
        *,
        seen: HeldSlots | None = None,
    ) -> Reservation:
        self.reserve_calls.append(execution_id)
        self.reserve_reads.append(seen)
        seen = seen or await self.held_slots()
        if seen.live_by_user.get(user_id, 0) >= per_user:
            return Reservation.USER_LIMIT
        # As on Mongo: the read picks the candidates, the slot's own state decides.
        free = next(
            (s for s in self.slots if s.slot_id not in seen.taken and s.execution_id is None), None
        )
        if free is None:
            return Reservation.FULL
        free.execution_id, free.user_id, free.owner = execution_id, user_id, owner
        free.lease_until = lease_until
        return Reservation.RESERVED

    async def held_slots(self) -> HeldSlots:
        now = _now()
        counts: dict[str, int] = {}
        for slot in self.slots:
            if slot.user_id and _alive(slot, now):
                counts[slot.user_id] = counts.get(slot.user_id, 0) + 1
        taken = frozenset(s.slot_id for s in self.slots if s.execution_id is not None)
        return HeldSlots(taken=taken, live_by_user=counts)

    async def release(self, execution_id: str, owner: str) -> None:
        self.released.append(execution_id)
        for slot in self.slots:
            if slot.execution_id == execution_id and slot.owner == owner:
                slot.execution_id = slot.user_id = slot.owner = None
                slot.lease_until = None

    async def renew(self, owner: str, execution_ids: Sequence[str], lease_until: datetime) -> None:
        for slot in self.slots:
            if slot.execution_id in execution_ids and slot.owner == owner:
                slot.lease_until = lease_until

    async def expired(self, now: datetime, limit: int) -> list[HeldSlot]:
        return [
            HeldSlot(s.slot_id, s.execution_id, s.user_id or "", s.owner or "", s.lease_until)
            for s in self.slots
            if s.execution_id is not None and s.lease_until is not None and s.lease_until < now
        ][:limit]

    async def prolong(self, slot: HeldSlot, lease_until: datetime) -> bool:
        current = next(s for s in self.slots if s.slot_id == slot.slot_id)
        if (current.execution_id, current.owner, current.lease_until) != (
            slot.execution_id,
            slot.owner,
            slot.lease_until,
        ):
            return False
        current.lease_until = lease_until
        return True


def _alive(slot: Slot, now: datetime) -> bool:
    return slot.lease_until is not None and slot.lease_until > now


class FakeResultStore(ClientSpans):
    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.down_for = 0  # the next this many saves fail, as with the store away

    async def save(self, execution_id: str, document: dict[str, Any]) -> None:
        if self.down_for > 0:
            self.down_for -= 1
            raise StoreUnavailableError("could not store the result: connection refused")
        self.documents[execution_id] = document


class FakePublisher:
    """Records what it published; refuses the event types in ``failing`` like a broker outage."""

    def __init__(self) -> None:
        self.events: list[EventEnvelope] = []
        self.failing: set[str] = set()

    async def publish(self, event: EventEnvelope) -> PublishedRecord:
        if event.event_type in self.failing:
            raise PublishError(f"broker did not acknowledge {event.event_type} (fake)")
        self.events.append(event)
        return PublishedRecord(topic=event.topic.name, partition=0, offset=len(self.events) - 1)

    def of(self, execution_id: str) -> list[EventEnvelope]:
        return [e for e in self.events if e.execution_id == execution_id]

    def terminal(self, execution_id: str) -> list[EventEnvelope]:
        return [e for e in self.of(execution_id) if e.event_type in TERMINAL_EXECUTION_EVENTS]


class FakeRunner:
    """``SandboxRunner`` returning scripted results. With ``hold`` set up, a run blocks until
    ``hold`` is set or its cancel event is, like a long program; cancelled runs say so."""

    name = "fake"

    def __init__(self) -> None:
        self.results: dict[str, SandboxResult] = {}
        self.default = sandbox_result()
        self.error: Exception | None = None
        self.hold: asyncio.Event | None = None
        self.requests: list[SandboxRequest] = []
        self.started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.cancels: dict[str, asyncio.Event] = {}

    def runtimes(self) -> list[Runtime]:
        return [
            Runtime("python", ["3.11", "3.12"], "3.11"),
            Runtime("javascript", ["20"], "20"),
            Runtime("bash", ["5.2"], "5.2"),
        ]

    async def run(self, request: SandboxRequest, cancel: asyncio.Event) -> SandboxResult:
        self.requests.append(request)
        self.cancels[request.execution_id] = cancel
        self.started[request.execution_id].set()
        if self.error is not None:
            raise self.error
        if self.hold is not None and not cancel.is_set():
            waiters = [asyncio.create_task(self.hold.wait()), asyncio.create_task(cancel.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        if cancel.is_set():
            return sandbox_result(
                "cancelled", exit_code=None, signal=9, stdout="", error="cancelled while running"
            )
        return self.results.get(request.execution_id, self.default)

    async def wait_started(self, execution_id: str) -> None:
        await asyncio.wait_for(self.started[execution_id].wait(), timeout=5)


# -- harness -------------------------------------------------------------------------------------


@dataclass
class Harness:
    store: FakeSagaStore
    slots: FakeSlotPool
    results: FakeResultStore
    runner: FakeRunner
    publisher: FakePublisher
    exporter: InMemorySpanExporter
    tracer: Tracer
    policy: RunPolicy
    saga: ExecutionSaga
    _schedulers: list[Scheduler] = field(default_factory=list)

    result = staticmethod(sandbox_result)

    @staticmethod
    def request(
        execution_id: str | None = None,
        *,
        user_id: str = "user-1",
        language: str = "python",
        language_version: str = "3.11",
        timeout_s: float = 5.0,
        memory_mb: int = 128,
    ) -> ExecutionRequest:
        return ExecutionRequest(
            execution_id=execution_id or f"ex-{uuid.uuid4().hex[:8]}",
            user_id=user_id,
            correlation_id=f"corr-{uuid.uuid4().hex[:8]}",
            script="print(sum(range(10)))",
            language=language,
            language_version=language_version,
            stdin="",
            timeout_s=timeout_s,
            memory_mb=memory_mb,
        )

    def saga_doc(
        self,
        request: ExecutionRequest,
        status: SagaStatus = SagaStatus.QUEUED,
        *,
        enqueued_at: datetime | None = None,
        owner: str | None = None,
        lease_until: datetime | None = None,
        cancel_requested: bool = False,
    ) -> Saga:
        """Put a saga straight into the store (as another instance could have left it)."""
        saga = Saga(
            execution_id=request.execution_id,
            user_id=request.user_id,
            correlation_id=request.correlation_id,
            request=request,
            status=status,
            enqueued_at=enqueued_at or _now(),
            owner=owner,
            lease_until=lease_until,
            cancel_requested=cancel_requested,
            steps=["validate"],
        )
        self.store.put(saga)
        return saga

    def queue(self, user_id: str, count: int, start: datetime, *, prefix: str = "") -> list[str]:
        """``count`` queued sagas of ``user_id``, enqueued a second apart from ``start``."""
        ids = []
        for i in range(count):
            request = self.request(f"{prefix or user_id}-{i:02d}", user_id=user_id)
            self.saga_doc(request, enqueued_at=start + timedelta(seconds=i))
            ids.append(request.execution_id)
        return ids

    async def reserved(self, request: ExecutionRequest) -> Saga:
        """Accept ``request`` and take it out of the queue the way the scheduler does."""
        assert await self.saga.accept(request)
        lease_until = _now() + self.policy.lease
        reservation = await self.slots.reserve(
            request.execution_id, request.user_id, INSTANCE, lease_until, self.policy.per_user
        )
        assert reservation is Reservation.RESERVED
        assert await self.store.claim_queued(request.execution_id, INSTANCE, lease_until)
        saga = await self.store.get(request.execution_id)
        assert saga is not None
        return saga

    def scheduler(
        self, local_capacity: int = 4, timing: SchedulerTiming | None = None
    ) -> Scheduler:
        scheduler = Scheduler(
            saga=self.saga,
            store=self.store,
            slots=self.slots,
            policy=self.policy,
            local_capacity=local_capacity,
            tracer=self.tracer,
            timing=timing,
        )
        self._schedulers.append(scheduler)
        return scheduler

    def handlers(self, scheduler: Scheduler) -> RequestHandlers:
        return RequestHandlers(self.saga, scheduler, self.store)

    def context(self, span: Span) -> MessageContext:
        return MessageContext(
            topic="execution_requests",
            partition=0,
            offset=0,
            key=None,
            headers={},
            group_id="execution-coordinator",
            attempt=1,
            span=span,
        )

    def trace_store_calls(self) -> None:
        """From now on the fake stores make the client spans PyMongo would (``ClientSpans``)."""
        for port in (self.store, self.slots, self.results):
            port.client_tracer = self.tracer

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def step_spans(self, execution_id: str) -> dict[str, ReadableSpan]:
        """The ``saga.step`` spans of one execution by step name (the last of each)."""
        return {
            str((s.attributes or {})["saga.step"]): s
            for s in self.spans("saga.step")
            if (s.attributes or {}).get("saga.id") == execution_id
        }

    async def settle(self) -> None:
        """Let every run started by a scheduler finish (releasing a ``hold`` first)."""
        if self.runner.hold is not None:
            self.runner.hold.set()
        for scheduler in self._schedulers:
            await scheduler.drain(grace_s=5)
            assert scheduler.running == []


MakeHarness = Callable[..., Harness]


@pytest.fixture
def make_harness() -> MakeHarness:
    def make(
        *,
        global_slots: int = 8,
        per_user: int = 4,
        max_timeout_s: float = 30.0,
        max_memory_mb: int = 512,
        lease: timedelta = timedelta(seconds=15),
    ) -> Harness:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("coordinator-unit")
        policy = RunPolicy(
            max_timeout_s=max_timeout_s,
            max_memory_mb=max_memory_mb,
            max_output_bytes=65536,
            lease=lease,
            per_user=per_user,
            store_retry_s=1.0,
        )
        store, slots = FakeSagaStore(), FakeSlotPool(global_slots)
        results, runner, publisher = FakeResultStore(), FakeRunner(), FakePublisher()
        saga = ExecutionSaga(
            store=store,
            slots=slots,
            results=results,
            runner=runner,
            publisher=publisher,
            producer=PRODUCER,
            policy=policy,
            instance_id=INSTANCE,
            tracer=tracer,
        )
        return Harness(
            store=store,
            slots=slots,
            results=results,
            runner=runner,
            publisher=publisher,
            exporter=exporter,
            tracer=tracer,
            policy=policy,
            saga=saga,
        )

    return make


@pytest.fixture
def harness(make_harness: MakeHarness) -> Harness:
    return make_harness()
