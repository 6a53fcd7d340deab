"""In-memory fakes of event-replay's ports, and a harness wiring them to real runners, a real
pool, the real service and the real HTTP app.

The fakes keep the Mongo adapters' semantics (a save by a non-owner fails, one take-over per
orphan, events read in (occurred_at, event_id) order after a cursor), so sessions can be driven
with no infrastructure. Spans go to an in-memory exporter of a real SDK provider.

pytest imports this module under a name of its own, so test modules get these objects through
the fixtures and import the classes for type checking only (``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext

from integr8scode_auth import AccountStatus, AccountStoreUnavailableError, JwtVerifier
from integr8scode_event_replay.adapters.event_store import stored_document
from integr8scode_event_replay.adapters.mongo_events import stored_event
from integr8scode_event_replay.app import build_app
from integr8scode_event_replay.domain.errors import (
    OwnershipLostError,
    PublishFailedError,
    QueryTimeoutError,
)
from integr8scode_event_replay.domain.messages import ReplayMessage, StoredEvent
from integr8scode_event_replay.domain.ports import EventCount
from integr8scode_event_replay.domain.sessions import (
    ACTIVE,
    Cursor,
    ReplaySession,
    SessionStatus,
)
from integr8scode_event_replay.domain.spec import (
    ReplayFilters,
    SessionSpec,
    SpecLimits,
    Speed,
    Target,
)
from integr8scode_event_replay.pool import SessionPool
from integr8scode_event_replay.routes.dependencies import ReplayContext
from integr8scode_event_replay.runner import RunnerDeps, RunPolicy, SessionRunner
from integr8scode_event_replay.service import ReplayService
from integr8scode_event_replay.slots import Slots
from integr8scode_events import (
    EventEnvelope,
    ExecutionCompleted,
    ExecutionRequested,
    ExecutionStarted,
    ProducerInfo,
)
from integr8scode_events.payloads import (
    ExecutionCompletedPayload,
    ExecutionLimits,
    ExecutionRequestedPayload,
    ExecutionStartedPayload,
    OutputSummary,
    ResourceUsage,
)

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
INSTANCE = "replay-a"
PRODUCER = ProducerInfo(service="unit", version="0")
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def token(role: str = "admin", *, secret: str = SECRET, **overrides: Any) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": f"user-{uuid.uuid4().hex[:6]}",
        "role": role,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        **overrides,
    }
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, "HS256")


def bearer(role: str = "admin", **overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, **overrides)}"}


def lifecycle(
    execution_id: str | None = None, *, start: datetime = T0, gap_s: float = 1.0
) -> list[EventEnvelope]:
    """requested → started → completed of one execution, ``gap_s`` apart."""
    execution = execution_id or f"exec-{uuid.uuid4().hex[:8]}"
    common: dict[str, Any] = {
        "producer": PRODUCER,
        "correlation_id": execution,
        "execution_id": execution,
        "user_id": "user-1",
    }
    at = [start + timedelta(seconds=gap_s * i) for i in range(3)]
    usage = ResourceUsage(cpu_time_ms=1, wall_time_ms=2, peak_memory_kb=3)
    return [
        ExecutionRequested(
            occurred_at=at[0],
            payload=ExecutionRequestedPayload(
                script="print(1)",
                language="python",
                language_version="3.11",
                limits=ExecutionLimits(timeout_s=5, memory_mb=128),
            ),
            **common,
        ),
        ExecutionStarted(
            occurred_at=at[1],
            payload=ExecutionStartedPayload(runner="fake", started_at=at[1], queue_wait_ms=1.0),
            **common,
        ),
        ExecutionCompleted(
            occurred_at=at[2],
            payload=ExecutionCompletedPayload(
                exit_code=0,
                resource_usage=usage,
                output=OutputSummary(stdout_bytes=2, stderr_bytes=0, stdout_preview="1\n"),
            ),
            **common,
        ),
    ]


def traceparent() -> str:
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


def as_stored(event: EventEnvelope, offset: int = 0, tp: str | None = None) -> StoredEvent:
    """An event as the archiver stores it and the event source reads it back."""
    doc = stored_document(
        event,
        topic=event.topic.name,
        partition=0,
        offset=offset,
        headers={"traceparent": tp or traceparent()},
    )
    doc["_id"] = uuid.uuid4().hex
    return stored_event(doc)


def _matches(event: StoredEvent, filters: ReplayFilters) -> bool:
    doc = event.document
    if filters.event_types and event.event_type not in filters.event_types:
        return False
    if filters.execution_id is not None and doc.get("execution_id") != filters.execution_id:
        return False
    if filters.user_id is not None and doc.get("user_id") != filters.user_id:
        return False
    if filters.occurred_from is not None and event.occurred_at < filters.occurred_from:
        return False
    return not (filters.occurred_to is not None and event.occurred_at >= filters.occurred_to)


class FakeEvents:
    """``EventSource`` over a list."""

    def __init__(self, events: Sequence[StoredEvent] = ()) -> None:
        self.events = list(events)
        self.pages = 0
        self.counts = 0
        self.per_event_s = 0.0
        self.page_delay_s = 0.0
        # Cleared, it holds every full count (a session's background count) until set again.
        self.count_gate = asyncio.Event()
        self.count_gate.set()

    def add(self, *events: EventEnvelope) -> list[StoredEvent]:
        stored = [as_stored(e, offset=len(self.events) + i) for i, e in enumerate(events)]
        self.events.extend(stored)
        return stored

    async def count(self, filters: ReplayFilters) -> int:
        self.counts += 1
        await self.count_gate.wait()
        return sum(1 for e in self.events if _matches(e, filters))

    async def count_up_to(self, filters: ReplayFilters, limit: int, budget_s: float) -> EventCount:
        """Counts one event per ``per_event_s`` (a slow store), so the budget can cut it."""
        seen = 0
        try:
            async with asyncio.timeout(budget_s):
                for event in self.events:
                    if seen >= limit:
                        break
                    await asyncio.sleep(self.per_event_s)
                    if _matches(event, filters):
                        seen += 1
        except TimeoutError:
            return EventCount(seen, complete=False)
        return EventCount(seen, complete=seen < limit)

    async def page(
        self,
        filters: ReplayFilters,
        after: Cursor | None,
        limit: int,
        budget_s: float | None = None,
    ) -> Sequence[StoredEvent]:
        self.pages += 1
        try:
            async with asyncio.timeout(budget_s):
                await asyncio.sleep(self.page_delay_s)
        except TimeoutError as exc:
            raise QueryTimeoutError("the fake store is slower than the budget") from exc
        ordered = sorted((e for e in self.events if _matches(e, filters)), key=lambda e: e.cursor)
        return [e for e in ordered if after is None or e.cursor > after][:limit]


class FakeSessions:
    """``SessionStore`` in a dict of copies (what the runner holds is not what is stored)."""

    def __init__(self) -> None:
        self.docs: dict[str, ReplaySession] = {}
        self.saves = 0
        self.taken: set[str] = set()

    async def ensure_indexes(self) -> None:
        return None

    async def insert(self, session: ReplaySession) -> None:
        assert session.id not in self.docs
        self.docs[session.id] = copy.deepcopy(session)

    async def get(self, session_id: str) -> ReplaySession | None:
        found = self.docs.get(session_id)
        return copy.deepcopy(found) if found else None

    async def list_page(
        self, status: SessionStatus | None, limit: int, offset: int
    ) -> tuple[list[ReplaySession], int]:
        found = [s for s in self.docs.values() if status is None or s.status is status]
        found.sort(key=lambda s: s.created_at, reverse=True)
        return [copy.deepcopy(s) for s in found[offset : offset + limit]], len(found)

    async def save(self, session: ReplaySession, owner: str) -> None:
        stored = self.docs[session.id]
        if stored.owner != owner:
            raise OwnershipLostError(f"{session.id} is owned by {stored.owner}")
        self.saves += 1
        self.docs[session.id] = copy.deepcopy(session)

    async def orphaned(self, now: datetime) -> list[ReplaySession]:
        return [
            copy.deepcopy(s)
            for s in self.docs.values()
            if s.status in ACTIVE
            and not s.spec.dry_run
            and (s.owner is None or s.lease_until is None or s.lease_until <= now)
        ]

    async def take_over(self, session: ReplaySession, owner: str, lease_until: datetime) -> bool:
        marker = f"{session.id}:{session.updated_at.isoformat()}"
        if marker in self.taken:
            return False
        self.taken.add(marker)
        stored = self.docs[session.id]
        if stored.updated_at != session.updated_at:
            return False
        stored.owner, stored.lease_until = owner, lease_until
        stored.updated_at = datetime.now(UTC)
        return True


class FakeControls:
    """``ControlStore`` in a dict."""

    def __init__(self) -> None:
        self.desired: dict[str, SessionStatus] = {}

    async def request(self, session_id: str, desired: SessionStatus) -> None:
        self.desired[session_id] = desired

    async def requested(self, session_id: str) -> SessionStatus | None:
        return self.desired.get(session_id)


class FakePublisher:
    """``ReplayPublisher`` that records; ``failures`` publishes fail first; with ``gate`` set,
    each publish waits until the test lets it through (``release``)."""

    def __init__(self) -> None:
        self.sent: list[ReplayMessage] = []
        self.handed: list[ReplayMessage] = []  # every attempt, in the order handed over
        self.failures = 0
        self.gate: asyncio.Queue[None] | None = None
        self.attempts = 0

    def hold(self) -> None:
        self.gate = asyncio.Queue()

    def release(self, n: int = 1) -> None:
        assert self.gate is not None
        for _ in range(n):
            self.gate.put_nowait(None)

    async def publish(
        self, message: ReplayMessage, handed_over: Callable[[], object] | None = None
    ) -> None:
        self.attempts += 1
        self.handed.append(message)
        if handed_over is not None:
            handed_over()
        if self.gate is not None:
            await self.gate.get()
        if self.failures > 0:
            self.failures -= 1
            raise PublishFailedError("broker did not acknowledge (fake)")
        self.sent.append(message)


FAST = RunPolicy(
    batch_size=2,
    max_wait_s=5.0,
    publish_attempts=2,
    publish_backoff_s=0.001,
    max_consecutive_failures=2,
    progress_interval_s=0.05,
    control_poll_s=0.02,
    lease_s=3.0,
)


class FakeAccounts:
    """``AccountDirectory``: every account is an enabled admin at generation 0 unless
    ``by_id`` says otherwise (None: deleted); ``down`` makes it raise
    ``AccountStoreUnavailableError``."""

    def __init__(self) -> None:
        self.by_id: dict[str, AccountStatus | None] = {}
        self.down = False

    async def status(self, user_id: str) -> AccountStatus | None:
        if self.down:
            raise AccountStoreUnavailableError("account store unavailable: test")
        return self.by_id.get(user_id, AccountStatus("admin", False, 0))


@dataclass
class Harness:
    """Fakes, a tracer with an in-memory exporter, and the real pool/service/app over them."""

    events: FakeEvents
    sessions: FakeSessions
    controls: FakeControls
    publisher: FakePublisher
    exporter: InMemorySpanExporter
    deps: RunnerDeps
    pool: SessionPool
    service: ReplayService
    app: FastAPI
    limits: SpecLimits
    accounts: FakeAccounts
    runners: list[SessionRunner] = field(default_factory=list)

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def new_session(
        self,
        *,
        filters: ReplayFilters | None = None,
        max_events: int = 100,
        speed: float | None = None,
        target: str | None = "replay-test",
        reprocess: bool = False,
    ) -> ReplaySession:
        now = datetime.now(UTC)
        session = ReplaySession(
            id=uuid.uuid4().hex,
            spec=SessionSpec(
                filters=filters or ReplayFilters(user_id="user-1"),
                target=Target(target),
                speed=Speed(speed),
                max_events=max_events,
                reprocess=reprocess,
            ),
            status=SessionStatus.CREATED,
            created_at=now,
            created_by="admin-1",
            matched=None,
            updated_at=now,
            owner=INSTANCE,
            lease_until=now + timedelta(seconds=30),
        )
        self.sessions.docs[session.id] = copy.deepcopy(session)
        return session

    def runner(self, session: ReplaySession, creator: SpanContext | None = None) -> SessionRunner:
        runner = SessionRunner(session, self.deps, creator=creator)
        self.runners.append(runner)
        return runner

    async def stored(self, session_id: str) -> ReplaySession:
        found = await self.sessions.get(session_id)
        assert found is not None
        return found

    async def wait_status(
        self, session_id: str, *statuses: SessionStatus, timeout_s: float = 5.0
    ) -> ReplaySession:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = await self.stored(session_id)
            if found.status in statuses:
                return found
            assert loop.time() < deadline, f"{session_id} still {found.status}, not {statuses}"
            await asyncio.sleep(0.01)

    async def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://replay")


def build_harness(
    policy: RunPolicy = FAST,
    *,
    slots: int = 2,
    limits: SpecLimits | None = None,
    dry_run_budget_s: float = 2.0,
) -> Harness:
    events, sessions, controls, publisher = (
        FakeEvents(),
        FakeSessions(),
        FakeControls(),
        FakePublisher(),
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    deps = RunnerDeps(
        sessions=sessions,
        controls=controls,
        events=events,
        publisher=publisher,
        slots=Slots(slots),
        policy=policy,
        tracer=provider.get_tracer("unit"),
        instance_id=INSTANCE,
    )
    limits = limits or SpecLimits(
        default_max_events=50, max_events_limit=100, max_speed_factor=1000
    )
    harness_runners: list[SessionRunner] = []

    def factory(session: ReplaySession, creator: SpanContext | None) -> SessionRunner:
        runner = SessionRunner(session, deps, creator=creator)
        harness_runners.append(runner)
        return runner

    pool = SessionPool(
        sessions=sessions,
        runner_factory=factory,
        instance_id=INSTANCE,
        lease_s=policy.lease_s,
        recovery_interval_s=0.05,
        clock=lambda: datetime.now(UTC),
    )
    service = ReplayService(
        sessions=sessions,
        controls=controls,
        events=events,
        pool=pool,
        limits=limits,
        preview_size=2,
        dry_run_budget_s=dry_run_budget_s,
        lease_s=policy.lease_s,
        instance_id=INSTANCE,
        control_ack_timeout_s=1.0,
        clock=lambda: datetime.now(UTC),
        tracer_provider=provider,
    )
    accounts = FakeAccounts()
    app = build_app(ReplayContext(service=service, tokens=JwtVerifier(SECRET), accounts=accounts))
    return Harness(
        events=events,
        sessions=sessions,
        controls=controls,
        publisher=publisher,
        exporter=exporter,
        deps=deps,
        pool=pool,
        service=service,
        app=app,
        limits=limits,
        accounts=accounts,
        runners=harness_runners,
    )


@pytest.fixture(params=[1, 4], ids=["one-by-one", "window-4"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Every runner test twice: events one at a time, and at speed max a window of 4 awaiting
    their acknowledgement (paced sessions go one at a time in both)."""
    built = build_harness(dataclasses.replace(FAST, publish_window=request.param))
    try:
        yield built
    finally:
        built.pool.stop()
        await built.pool.drain(2.0)


@pytest.fixture
def harness_factory() -> Callable[..., Harness]:
    return build_harness


@pytest.fixture
def make_lifecycle() -> Callable[..., list[EventEnvelope]]:
    """``lifecycle``: requested → started → completed of one execution."""
    return lifecycle


@pytest.fixture
def make_bearer() -> Callable[..., dict[str, str]]:
    """``bearer``: an Authorization header with a token signed like the api's."""
    return bearer
