"""Fixtures of the dlq-processor's tests.

Unit (``tests/unit``): fakes behind the Protocols, builders of reports and policies, an admin app
wired with them. Integration (``tests/integration``): the running stack and the RUNNING
dlq-processor service (port 8002) — each test gets a topic of its own (the processor re-publishes
to ``x-original-topic``, so nothing else reads these retries), a consumer group of its own, an
isolated tracer provider that exports to the collector, and admin-API clients with a token from
the api.

Test modules import the classes here for typing only (``if TYPE_CHECKING: from conftest ...``):
conftest is not importable at run time under ``--import-mode=importlib``; fixtures hand them out.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fastapi.testclient import TestClient
from tests.e2e.client import API, new_user
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_auth import AccountStatus, AccountStoreUnavailableError, JwtVerifier
from integr8scode_dlq_processor.app import build_app
from integr8scode_dlq_processor.domain.dead_letters import DeadLetterService
from integr8scode_dlq_processor.domain.errors import RepublishFailedError, StoreUnavailableError
from integr8scode_dlq_processor.domain.policies import Action, Jitter, PolicyBook, RetryPolicy
from integr8scode_dlq_processor.domain.ports import (
    ClaimOutcome,
    ClaimResult,
    CountRow,
    ListFilter,
    Page,
    Publication,
)
from integr8scode_dlq_processor.domain.records import DeadLetter, Status
from integr8scode_dlq_processor.domain.reports import FailureReport
from integr8scode_dlq_processor.domain.retry_message import RetryMessage
from integr8scode_dlq_processor.domain.updates import RecordUpdater
from integr8scode_dlq_processor.routes.dependencies import DlqContext
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    KafkaSettings,
    MessageContext,
    RawMessage,
)
from integr8scode_events.kafka import RetryPolicy as HandlerRetry
from integr8scode_telemetry import TelemetryHandle, TelemetrySettings, init_telemetry

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def ceiling(low: float, high: float) -> float:
    """A deterministic 'uniform': always the upper bound."""
    return high


def policy(**overrides: Any) -> RetryPolicy:
    fields: dict[str, Any] = {
        "rule": "default",
        "action": Action.RETRY,
        "max_attempts": 3,
        "initial_backoff_s": 1.0,
        "max_backoff_s": 4.0,
        "multiplier": 2.0,
        "jitter": Jitter.FULL,
    }
    return RetryPolicy(**{**fields, **overrides})


_offsets = iter(range(1_000_000))


def report(**overrides: Any) -> FailureReport:
    """A dead letter as ``FailureReport.from_message`` reads it; header overrides by name."""
    headers = {
        "event_type": "execution.requested",
        "correlation_id": "corr-1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-original-topic": "execution_events",
        "x-original-partition": "2",
        "x-original-offset": "17",
        "x-consumer-group": "notifier",
        "x-error-type": "builtins.RuntimeError",
        "x-error-message": "boom",
        "x-retry-count": "0",
        "x-failed-at": T0.isoformat(),
        **overrides.pop("headers", {}),
    }
    for name, value in list(headers.items()):
        if value is None:
            del headers[name]
    value = overrides.pop(
        "value",
        b'{"event_id": "e-1", "event_type": "execution.requested", "execution_id": "x-1"}',
    )
    return FailureReport.from_message(
        partition=overrides.pop("partition", 0),
        offset=overrides.pop("offset", next(_offsets)),
        key=overrides.pop("key", b"x-1"),
        value=value,
        headers=headers,
        timestamp_ms=int(T0.timestamp() * 1000),
    )


class FakeStore:
    """``DeadLetterStore`` in a dict, with the version check; ``down`` raises."""

    def __init__(self) -> None:
        self.records: dict[str, DeadLetter] = {}
        self.down = False
        self.replaces = 0
        self.due_calls = 0
        self.interfere: Callable[[DeadLetter], DeadLetter] | None = None

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("store down")

    async def ensure_indexes(self) -> None:
        self._check()

    async def insert(self, record: DeadLetter) -> bool:
        self._check()
        if record.id in self.records:
            return False
        self.records[record.id] = record
        return True

    async def get(self, record_id: str) -> DeadLetter | None:
        self._check()
        return self.records.get(record_id)

    async def replace(self, record: DeadLetter, expected_version: int) -> bool:
        self._check()
        self.replaces += 1
        if self.interfere is not None:  # another writer gets in between read and write
            current = self.records[record.id]
            self.records[record.id] = self.interfere(current).model_copy(
                update={"version": current.version + 1}
            )
            self.interfere = None
        stored = self.records.get(record.id)
        if stored is None or stored.version != expected_version:
            return False
        self.records[record.id] = record
        return True

    async def due(self, now: datetime, limit: int) -> list[DeadLetter]:
        self.due_calls += 1
        self._check()
        pending = [
            r
            for r in self.records.values()
            if r.status in (Status.SCHEDULED, Status.RETRYING)
            and r.next_attempt_at is not None
            and r.next_attempt_at <= now
        ]
        return sorted(pending, key=lambda r: r.next_attempt_at or now)[:limit]

    async def page(self, where: ListFilter, limit: int, offset: int) -> Page:
        self._check()
        found = [
            r
            for r in self.records.values()
            if (where.status is None or r.status is where.status)
            and (where.topic is None or r.topic == where.topic)
            and (where.event_type is None or r.event_type == where.event_type)
            and (where.consumer_group is None or r.consumer_group == where.consumer_group)
            and (where.execution_id is None or r.execution_id == where.execution_id)
        ]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return Page(items=found[offset : offset + limit], total=len(found))

    async def counts(self) -> list[CountRow]:
        self._check()
        rows: dict[tuple[str | None, str | None, Status], int] = {}
        for r in self.records.values():
            key = (r.topic, r.consumer_group, r.status)
            rows[key] = rows.get(key, 0) + 1
        return [CountRow(t, g, s, n) for (t, g, s), n in rows.items()]


@dataclass
class FakeClaims:
    """``AttemptClaims`` in a dict: ``{(id, attempt): (state, owner, lease_until, pub)}``."""

    claims: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    async def ensure_indexes(self) -> None:
        return None

    async def claim(
        self, record_id: str, attempt: int, owner: str, now: datetime, lease_until: datetime
    ) -> ClaimResult:
        key = (record_id, attempt)
        existing = self.claims.get(key)
        if existing is not None:
            if existing["state"] == "published":
                return ClaimResult(ClaimOutcome.PUBLISHED, existing["publication"])
            if existing["state"] == "claimed" and existing["lease_until"] > now:
                return ClaimResult(ClaimOutcome.BUSY)
        self.claims[key] = {"state": "claimed", "owner": owner, "lease_until": lease_until}
        return ClaimResult(ClaimOutcome.ACQUIRED)

    async def published(
        self, record_id: str, attempt: int, owner: str, publication: Publication
    ) -> None:
        self.claims[(record_id, attempt)].update(state="published", publication=publication)

    async def release(self, record_id: str, attempt: int, owner: str) -> None:
        claim = self.claims.get((record_id, attempt))
        if claim is not None and claim["owner"] == owner and claim["state"] == "claimed":
            claim["state"] = "released"


class FakeRepublisher:
    def __init__(self, clock: FakeClock) -> None:
        self.sent: list[RetryMessage] = []
        self.fail_with: str | None = None
        self._clock = clock

    async def republish(self, message: RetryMessage) -> Publication:
        if self.fail_with is not None:
            raise RepublishFailedError(self.fail_with)
        self.sent.append(message)
        return Publication(partition=0, offset=100 + len(self.sent), published_at=self._clock())


@dataclass
class Parts:
    """A service over fakes, and handles on every fake."""

    store: FakeStore
    claims: FakeClaims
    republisher: FakeRepublisher
    clock: FakeClock
    updater: RecordUpdater
    service: DeadLetterService


def build_parts(book: PolicyBook | None = None) -> Parts:
    store, clock = FakeStore(), FakeClock()
    updater = RecordUpdater(store)
    service = DeadLetterService(updater, book or PolicyBook(policy()), clock=clock, uniform=ceiling)
    return Parts(store, FakeClaims(), FakeRepublisher(clock), clock, updater, service)


@pytest.fixture
def parts() -> Parts:
    return build_parts()


def token(role: str = "admin", *, secret: str = SECRET, **claims: Any) -> str:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "sub": f"user-{role}",
        "role": role,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, "HS256")


class FakeAccounts:
    """``AccountDirectory`` in a dict: ``token()``'s subjects exist with their role; ``down``
    makes it raise AccountStoreUnavailableError (as ``MongoAccountDirectory`` does)."""

    def __init__(self) -> None:
        self.by_id: dict[str, AccountStatus] = {
            f"user-{role}": AccountStatus(role=role, disabled=False, token_generation=0)
            for role in ("admin", "user")
        }
        self.down = False
        self.reads = 0

    async def status(self, user_id: str) -> AccountStatus | None:
        self.reads += 1
        if self.down:
            raise AccountStoreUnavailableError("account store unavailable: test")
        return self.by_id.get(user_id)


@dataclass
class AdminHarness:
    parts: Parts
    client: TestClient
    woken: list[bool]
    accounts: FakeAccounts

    def headers(self, role: str = "admin", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(role, **claims)}"}


@pytest.fixture
def admin() -> AdminHarness:
    parts = build_parts()
    woken: list[bool] = []
    accounts = FakeAccounts()
    ctx = DlqContext(
        service=parts.service,
        tokens=JwtVerifier(SECRET),
        accounts=accounts,
        wake_scheduler=lambda: woken.append(True),
    )
    client = TestClient(build_app(ctx), raise_server_exceptions=False)
    return AdminHarness(parts, client, woken, accounts)


@pytest.fixture
def make_report() -> Callable[..., FailureReport]:
    return report


@pytest.fixture
def make_policy() -> Callable[..., RetryPolicy]:
    return policy


@pytest.fixture
def make_token() -> Callable[..., str]:
    return token


# --- integration: the running stack and service ------------------------------------------

STACK = local_stack()
DLQ = STACK.services["dlq-processor"]
ADMIN = ("admin", "admin-change-me")


@pytest.fixture
def kafka_settings() -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=STACK.kafka_bootstrap)


@pytest.fixture
async def topic() -> AsyncIterator[str]:
    """A fresh single-partition topic, deleted after the test."""
    admin = AIOKafkaAdminClient(bootstrap_servers=STACK.kafka_bootstrap)
    await admin.start()
    name = f"dlq-it-{uuid.uuid4().hex[:10]}"
    await admin.create_topics([NewTopic(name, 1, 1)])
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([name])
        await admin.close()


@pytest.fixture
def telemetry() -> Iterator[TelemetryHandle]:
    """The test's own tracer provider (service ``dlq-it-<hex>``), exporting to the collector."""
    handle = init_telemetry(
        TelemetrySettings(otlp_endpoint=STACK.otlp_grpc),
        f"dlq-it-{uuid.uuid4().hex[:6]}",
        "it",
        set_global=False,
        instrument_libraries=False,
    )
    yield handle
    handle.shutdown()


@pytest.fixture
async def publisher(
    kafka_settings: KafkaSettings, telemetry: TelemetryHandle
) -> AsyncIterator[EventPublisher]:
    async with EventPublisher(
        kafka_settings, "dlq-it", tracer_provider=telemetry.tracer_provider
    ) as pub:
        yield pub


@dataclass
class Deliveries:
    """What a test consumer's handler saw; it fails the first ``failures`` deliveries."""

    failures: int
    seen: list[RawMessage] = field(default_factory=list)

    async def handle(self, message: RawMessage, ctx: MessageContext) -> None:
        self.seen.append(message)
        if len(self.seen) <= self.failures:
            raise RuntimeError(f"test handler fails delivery {len(self.seen)}")

    def retries(self) -> list[RawMessage]:
        return [m for m in self.seen if "x-retry-count" in m.headers]

    async def wait_for(self, count: int, timeout_s: float = 60) -> list[RawMessage]:
        async def enough() -> list[RawMessage] | None:
            return list(self.seen) if len(self.seen) >= count else None

        return await eventually(enough, timeout_s=timeout_s, what=f"{count} deliveries")


ConsumerFactory = Callable[[str, Deliveries], Awaitable[ConsumerRunner]]
DeliveriesFactory = Callable[[int], Deliveries]


@pytest.fixture
def deliveries() -> DeliveriesFactory:
    """``deliveries(n)``: a handler record that fails its first ``n`` deliveries."""
    return Deliveries


@pytest.fixture
async def consumer(
    kafka_settings: KafkaSettings,
    publisher: EventPublisher,
    telemetry: TelemetryHandle,
    topic: str,
) -> AsyncIterator[ConsumerFactory]:
    """Start consumers of ``topic`` (group, handler) that dead-letter on the first failure."""
    started: list[tuple[ConsumerRunner, asyncio.Task[None]]] = []

    async def start(group: str, deliveries: Deliveries) -> ConsumerRunner:
        runner = ConsumerRunner(
            settings=kafka_settings,
            group_id=group,
            topics=[topic],
            publisher=publisher,
            raw_handler=deliveries.handle,
            retry=HandlerRetry(max_attempts=1),
            tracer_provider=telemetry.tracer_provider,
        )
        task = asyncio.create_task(runner.run())
        started.append((runner, task))

        async def assigned() -> bool:
            if task.done():
                task.result()
            return runner.assigned.is_set()

        await eventually(assigned, timeout_s=30, what=f"{group} assigned")
        return runner

    try:
        yield start
    finally:
        for runner, _ in started:
            runner.stop()
        await asyncio.gather(*(task for _, task in started), return_exceptions=True)


async def _token(http: httpx.AsyncClient) -> str:
    async def login() -> str | None:
        response = await http.post(
            "/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
        )
        return response.json()["access_token"] if response.status_code == 200 else None

    return await eventually(login, timeout_s=30, what="admin login")


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=API, timeout=30) as http:
        yield http


@pytest.fixture
async def dlq(api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the dlq-processor's admin API, as the local admin."""
    token = await _token(api)
    async with httpx.AsyncClient(
        base_url=DLQ, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        yield http


@pytest.fixture
async def user_token(api: httpx.AsyncClient) -> str:
    """A valid token of a user without the admin role."""
    return (await new_user(api, prefix="dlq_it")).token
