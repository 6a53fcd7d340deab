"""``/api/v1/execute`` and ``/api/v1/executions``: acceptance with and without an
``Idempotency-Key``, a broker that refuses or doesn't confirm, cancel, and the SSE stream,
through the HTTP edge with fakes behind the execution Protocols."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, SpanContext
from tests.polling import eventually

from integr8scode_api.app import build_app
from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.execution_limits import LimitPolicy, LimitTable, ResolvedLimits
from integr8scode_api.domain.execution_request import (
    ExecuteRequest,
    ExecutionPolicy,
    InputPolicy,
    ValidatedRequest,
)
from integr8scode_api.domain.executions import (
    ExecutionResult,
    ExecutionStatus,
    NewExecution,
    OutboxEntry,
    ResourceUsageView,
    Runtime,
    StatusChange,
    StoredExecution,
    Submission,
)
from integr8scode_api.domain.users import Role, User
from integr8scode_api.execution_service import (
    IN_PROGRESS,
    NOT_QUEUED,
    ExecutionService,
    request_fingerprint,
)
from integr8scode_api.handlers.lifecycle import LifecycleHandlers
from integr8scode_api.routes.executions import ExecutionRouteBounds
from integr8scode_events import (
    EventEnvelope,
    ExecutionCancelled,
    ExecutionCancelRequested,
    ExecutionRequested,
    ExecutionStarted,
    ProducerInfo,
    PublishError,
    PublishUncertainError,
    StoredTraceContext,
)
from integr8scode_events.kafka import MessageContext
from integr8scode_events.payloads import ExecutionCancelledPayload, ExecutionStartedPayload

if TYPE_CHECKING:
    from conftest import Harness

EXECUTE = "/api/v1/execute"
BODY = {"script": "print('hi')", "language": "python"}
SUBMIT_TIMEOUT_S = 5.0  # a pending first request is stale after twice this
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DEFAULT_LIMITS = ResolvedLimits(
    timeout_s=5, memory_mb=128, cpu_time_s=5, max_processes=32, max_output_kb=64
)
MAX_LIMITS = ResolvedLimits(
    timeout_s=10, memory_mb=256, cpu_time_s=10, max_processes=64, max_output_kb=1024
)
POLICY = ExecutionPolicy(
    inputs=InputPolicy(
        max_script_bytes=1000,
        max_stdin_bytes=1000,
        max_args=3,
        max_arg_bytes=10,
        max_files=2,
        max_file_bytes=100,
        max_files_total_bytes=150,
        max_expected_stdout_bytes=100,
    ),
    limits=LimitPolicy(base=LimitTable(defaults=DEFAULT_LIMITS, maximums=MAX_LIMITS)),
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeStore:
    """``ExecutionStore`` in dicts, with the Mongo adapter's rules (a terminal execution never
    moves; ``mark_not_queued`` only fails a queued one). ``down`` makes every call raise."""

    clock: Clock
    executions: dict[str, StoredExecution] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    outbox: dict[str, OutboxEntry] = field(default_factory=dict)
    down: bool = False
    reads: int = 0  # calls of ``get``

    def _check(self) -> None:
        if self.down:
            raise DependencyUnavailableError("execution store unavailable", dependency="mongo")

    async def create(self, execution: NewExecution) -> bool:
        self._check()
        if execution.execution_id in self.executions:
            return False
        self.executions[execution.execution_id] = StoredExecution(
            execution_id=execution.execution_id,
            user_id=execution.user_id,
            status=ExecutionStatus.QUEUED,
            language=execution.language,
            language_version=execution.language_version,
            created_at=execution.created_at,
            correlation_id=execution.execution_id,
            trace_id=execution.trace_id,
            request_fingerprint=execution.request_fingerprint,
            submission=execution.submission,
            status_history=(StatusChange(status=ExecutionStatus.QUEUED, at=execution.created_at),),
        )
        return True

    async def get(self, execution_id: str) -> StoredExecution | None:
        self._check()
        self.reads += 1
        return self.executions.get(execution_id)

    async def list_for_user(
        self, user_id: str | None, limit: int, offset: int
    ) -> tuple[list[StoredExecution], int]:
        self._check()
        mine = [e for e in self.executions.values() if user_id is None or e.user_id == user_id]
        mine.sort(key=lambda e: (e.created_at, e.execution_id), reverse=True)
        return mine[offset : offset + limit], len(mine)

    async def claim_idempotency_key(self, user_id: str, key: str, execution_id: str) -> str | None:
        self._check()
        bound = self.keys.get((user_id, key))
        if bound is not None:
            return bound[0]
        self.keys[user_id, key] = (execution_id, self.clock())
        return None

    async def idempotency_key_bound_at(self, user_id: str, key: str) -> datetime | None:
        self._check()
        bound = self.keys.get((user_id, key))
        return None if bound is None else bound[1]

    async def release_idempotency_key(self, user_id: str, key: str) -> None:
        self._check()
        self.keys.pop((user_id, key), None)

    async def set_submission(self, execution_id: str, submission: Submission) -> None:
        self._check()
        self._replace(execution_id, submission=submission)

    async def to_outbox(self, execution_id: str, event: str, trace: StoredTraceContext) -> None:
        self._check()
        self.outbox.setdefault(execution_id, OutboxEntry(execution_id, event, trace))

    async def outbox_entries(self, limit: int) -> list[OutboxEntry]:
        self._check()
        return list(self.outbox.values())[:limit]

    async def confirmed(self, execution_id: str) -> None:
        self._check()
        del self.outbox[execution_id]
        self._replace(execution_id, submission=Submission.ACKED)

    async def mark_not_queued(self, execution_id: str, error: str) -> None:
        self._check()
        if self.executions[execution_id].status is ExecutionStatus.QUEUED:
            self.move(execution_id, ExecutionStatus.FAILED, self.clock(), error=error)

    async def transition(
        self, execution_id: str, status: ExecutionStatus, at: datetime, **fields: object
    ) -> bool:
        self._check()
        current = self.executions.get(execution_id)
        if current is None or current.status.terminal or current.status is status:
            return False
        self.move(execution_id, status, at, **fields)
        return True

    def move(self, execution_id: str, status: ExecutionStatus, at: datetime, **fields: Any) -> None:
        """Apply a status change as the lifecycle does (tests use it to set the scene)."""
        current = self.executions[execution_id]
        if status.terminal:
            fields["finished_at"] = at
        self._replace(
            execution_id,
            status=status,
            status_history=(*current.status_history, StatusChange(status=status, at=at)),
            **fields,
        )

    def _replace(self, execution_id: str, **changes: Any) -> None:
        self.executions[execution_id] = dataclasses.replace(
            self.executions[execution_id], **changes
        )


@dataclass
class FakeReadModel:
    """``CoordinatorReadModel``: one runtime, results and queue positions as the test sets them."""

    results: dict[str, ExecutionResult] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)

    async def runtimes(self) -> list[Runtime]:
        return [
            Runtime(
                language="python",
                versions=["3.11", "3.12"],
                default_version="3.12",
                script_file="main.py",
            )
        ]

    async def result(self, execution_id: str) -> ExecutionResult | None:
        return self.results.get(execution_id)

    async def queue_position(self, execution_id: str) -> int | None:
        return self.positions.get(execution_id)


@dataclass
class FakePublisher:
    """Records what the broker acknowledged; ``outcomes`` are raised by the next publishes, in
    order (then every publish succeeds)."""

    sent: list[EventEnvelope] = field(default_factory=list)
    attempts: int = 0
    outcomes: list[Exception] = field(default_factory=list)
    parents: list[SpanContext] = field(default_factory=list)  # the current span of each publish

    async def publish(self, event: EventEnvelope) -> object:
        self.attempts += 1
        self.parents.append(trace.get_current_span().get_span_context())
        if self.outcomes:
            raise self.outcomes.pop(0)
        self.sent.append(event)
        return None


class FakeFeed:
    """``StatusFeed`` over in-process queues. ``subscribed`` is set once a stream listens;
    with nothing queued for ``idle_s`` the stream gets an idle tick (None)."""

    def __init__(self, idle_s: float = 0.05) -> None:
        self.idle_s = idle_s
        self.queues: dict[str, list[asyncio.Queue[StatusChange]]] = {}
        self.subscribed = asyncio.Event()

    async def publish(self, execution_id: str, change: StatusChange) -> None:
        for queue in self.queues.get(execution_id, []):
            queue.put_nowait(change)

    @asynccontextmanager
    async def subscribe(
        self, execution_id: str
    ) -> AsyncIterator[AsyncIterator[StatusChange | None]]:
        queue: asyncio.Queue[StatusChange] = asyncio.Queue()
        self.queues.setdefault(execution_id, []).append(queue)

        async def changes() -> AsyncIterator[StatusChange | None]:
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), self.idle_s)
                except TimeoutError:
                    yield None

        self.subscribed.set()
        try:
            yield changes()
        finally:
            self.queues[execution_id].remove(queue)


@dataclass
class Executions:
    harness: Harness
    service: ExecutionService
    store: FakeStore
    views: FakeReadModel
    publisher: FakePublisher
    feed: FakeFeed
    clock: Clock
    app: FastAPI
    client: TestClient

    def post(
        self, user: User, body: dict[str, Any] | None = None, key: str | None = None
    ) -> httpx.Response:
        headers = self.harness.bearer(user)
        if key is not None:
            headers["Idempotency-Key"] = key
        response: httpx.Response = self.client.post(EXECUTE, json=body or BODY, headers=headers)
        return response

    def requested(self) -> list[ExecutionRequested]:
        return [e for e in self.publisher.sent if isinstance(e, ExecutionRequested)]


@pytest.fixture
def ex(harness: Harness) -> Executions:
    clock = Clock()
    store, views, publisher, feed = FakeStore(clock), FakeReadModel(), FakePublisher(), FakeFeed()
    service = ExecutionService(
        executions=store,
        views=views,
        publisher=publisher,
        feed=feed,
        policy=POLICY,
        producer=ProducerInfo(service="integr8scode-api", version="test"),
        submit_timeout_s=SUBMIT_TIMEOUT_S,
        clock=clock,
    )
    app = build_app(harness.app.state.api, executions=service)
    client = TestClient(app, raise_server_exceptions=False)
    return Executions(harness, service, store, views, publisher, feed, clock, app, client)


# --- accepting a request --------------------------------------------------------------------


def test_a_request_is_stored_queued_and_published(ex: Executions) -> None:
    user = ex.harness.add_user()
    response = ex.post(user)
    assert response.status_code == 202
    execution_id = response.json()["execution_id"]
    assert response.json()["status"] == "queued"
    stored = ex.store.executions[execution_id]
    assert (stored.user_id, stored.status, stored.language_version) == (
        user.id,
        ExecutionStatus.QUEUED,
        "3.12",
    )
    assert stored.submission is None  # no key: nobody waits for the outcome
    assert stored.request_fingerprint is None
    [event] = ex.requested()
    assert event.execution_id == execution_id
    assert event.payload.script == BODY["script"]
    assert (event.payload.limits.timeout_s, event.payload.limits.memory_mb) == (5, 128)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"script": "x", "language": "cobol"},
            "language: unknown language 'cobol'; available: python",
        ),
        ({"script": "x", "language": "python", "language_version": "2.7"}, "'2.7' is not"),
        ({"script": "x" * 1001, "language": "python"}, "script: 1001 bytes; the maximum is 1000"),
        (
            {"script": "x", "language": "python", "limits": {"timeout_s": 60, "memory_mb": 64}},
            "limits.timeout_s: 60 is above the maximum 10 for python",
        ),
    ],
)
def test_a_request_the_platform_cannot_take_is_422_and_not_stored(
    ex: Executions, body: dict[str, Any], message: str
) -> None:
    response = ex.post(ex.harness.add_user(), body)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert ex.store.executions == {}
    assert ex.publisher.attempts == 0


def test_the_same_key_and_request_gets_the_same_execution_once(ex: Executions) -> None:
    user = ex.harness.add_user()
    first = ex.post(user, key="k-1")
    again = ex.post(user, key="k-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert len(ex.store.executions) == 1
    assert len(ex.requested()) == 1  # the replay published nothing
    assert ex.store.executions[first.json()["execution_id"]].submission is Submission.ACKED
    other_user = ex.post(ex.harness.add_user(), key="k-1")  # keys are per user
    assert other_user.json()["execution_id"] != first.json()["execution_id"]


def test_a_replay_answers_the_current_status(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user, key="k").json()["execution_id"]
    ex.store.move(execution_id, ExecutionStatus.RUNNING, T0)
    assert ex.post(user, key="k").json() == {"execution_id": execution_id, "status": "running"}


def test_a_key_reused_for_another_request_is_422(ex: Executions) -> None:
    user = ex.harness.add_user()
    ex.post(user, key="k-2")
    other = ex.post(user, {**BODY, "script": "print('other')"}, key="k-2")
    assert other.status_code == 422
    assert "Idempotency-Key was already used for a different request" in other.json()["detail"]
    assert len(ex.store.executions) == 1
    assert len(ex.requested()) == 1


def _pending_first_request(ex: Executions, user: User, key: str) -> str:
    """The state a first request leaves while it still waits for the broker."""
    execution_id = "first-request"
    ex.store.keys[user.id, key] = (execution_id, ex.clock())
    ex.store.executions[execution_id] = StoredExecution(
        execution_id=execution_id,
        user_id=user.id,
        status=ExecutionStatus.QUEUED,
        language="python",
        language_version="3.12",
        created_at=ex.clock(),
        correlation_id=execution_id,
        request_fingerprint=request_fingerprint(
            ValidatedRequest(BODY["script"], "python", "3.12", "", DEFAULT_LIMITS)
        ),
        submission=Submission.PENDING,
        status_history=(StatusChange(status=ExecutionStatus.QUEUED, at=ex.clock()),),
    )
    return execution_id


def test_a_retry_while_the_first_request_waits_for_the_broker_is_409(ex: Executions) -> None:
    user = ex.harness.add_user()
    _pending_first_request(ex, user, "k-3")
    response = ex.post(user, key="k-3")
    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    assert response.json()["detail"] == IN_PROGRESS
    assert ex.publisher.attempts == 0


def test_a_first_request_that_died_pending_is_submitted_again_by_a_retry(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = _pending_first_request(ex, user, "k-4")
    ex.clock.now += timedelta(seconds=SUBMIT_TIMEOUT_S * 2)
    response = ex.post(user, key="k-4")
    assert response.status_code == 202
    assert response.json() == {"execution_id": execution_id, "status": "queued"}
    [event] = ex.requested()
    assert event.execution_id == execution_id
    assert ex.store.executions[execution_id].submission is Submission.ACKED


def test_a_key_whose_execution_was_never_stored_waits_then_is_taken_over(ex: Executions) -> None:
    user = ex.harness.add_user()
    ex.store.keys[user.id, "k-5"] = ("never-stored", ex.clock())
    assert ex.post(user, key="k-5").status_code == 409  # the first request may still store it
    ex.clock.now += timedelta(seconds=SUBMIT_TIMEOUT_S * 2)
    taken = ex.post(user, key="k-5")
    assert taken.status_code == 202
    assert taken.json()["execution_id"] == "never-stored"
    assert ex.store.executions["never-stored"].submission is Submission.ACKED
    assert [e.execution_id for e in ex.requested()] == ["never-stored"]


# --- a broker that refuses or doesn't confirm -----------------------------------------------


@pytest.mark.parametrize("key", [None, "k-6"])
def test_a_refused_publish_is_503_and_the_execution_failed_not_queued(
    ex: Executions, key: str | None
) -> None:
    user = ex.harness.add_user()
    ex.publisher.outcomes = [PublishError("no broker")]
    response = ex.post(user, key=key)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["detail"] == NOT_QUEUED
    [stored] = ex.store.executions.values()
    assert stored.status is ExecutionStatus.FAILED
    assert stored.error == NOT_QUEUED
    assert [c.status for c in stored.status_history] == ["queued", "failed"]
    assert ex.store.outbox == {}
    if key is not None:  # released: a retry with the key is a new request
        retry = ex.post(user, key=key)
        assert retry.status_code == 202
        assert retry.json()["execution_id"] != stored.execution_id


@pytest.mark.parametrize("key", [None, "k-7"])
def test_an_unconfirmed_publish_goes_to_the_outbox_and_is_202(
    ex: Executions, key: str | None
) -> None:
    user = ex.harness.add_user()
    ex.publisher.outcomes = [PublishUncertainError("no acknowledgement in time")]
    response = ex.post(user, key=key)
    assert response.status_code == 202
    execution_id = response.json()["execution_id"]
    stored = ex.store.executions[execution_id]
    assert stored.status is ExecutionStatus.QUEUED
    assert stored.submission is (Submission.OUTBOX if key else None)
    entry = ex.store.outbox[execution_id]
    assert json.loads(entry.event)["execution_id"] == execution_id
    if key is not None:
        assert ex.post(user, key=key).json() == response.json()
        assert ex.publisher.attempts == 1  # the replay did not publish again


async def test_the_outbox_is_flushed_until_the_broker_confirms(ex: Executions) -> None:
    user = ex.harness.add_user()
    ex.publisher.outcomes = [PublishUncertainError("slow"), PublishUncertainError("slow")]
    first = ex.post(user, key="a").json()["execution_id"]
    second = ex.post(user, key="b").json()["execution_id"]
    assert list(ex.store.outbox) == [first, second]

    ex.publisher.outcomes = [PublishError("still down")]
    assert await ex.service.flush_outbox() == 0  # stops at the first one not taken
    assert list(ex.store.outbox) == [first, second]

    assert await ex.service.flush_outbox() == 2
    assert ex.store.outbox == {}
    assert [e.execution_id for e in ex.requested()] == [first, second]
    assert {ex.store.executions[i].submission for i in (first, second)} == {Submission.ACKED}
    # The same event goes out again (the coordinator takes an execution once).
    assert len({e.event_id for e in ex.requested()}) == 2


async def test_a_flushed_request_is_published_in_the_trace_stored_with_it(ex: Executions) -> None:
    user = ex.harness.add_user()
    ex.publisher.outcomes = [PublishUncertainError("slow"), PublishUncertainError("slow")]
    traced = ex.post(user, key="a").json()["execution_id"]
    untraced = ex.post(user, key="b").json()["execution_id"]
    stored = StoredTraceContext(f"00-{'ab' * 16}-{'cd' * 8}-01", "vendor=x")
    ex.store.outbox[traced] = dataclasses.replace(ex.store.outbox[traced], trace=stored)
    ex.store.outbox[untraced] = dataclasses.replace(
        ex.store.outbox[untraced], trace=StoredTraceContext()
    )
    ex.publisher.parents.clear()

    assert await ex.service.flush_outbox() == 2

    resumed, bare = ex.publisher.parents
    assert resumed == stored.span_context
    assert resumed.trace_state.get("vendor") == "x"
    assert not bare.is_valid  # no stored context: published untraced, not in a new root


def test_a_down_store_is_503(ex: Executions) -> None:
    ex.store.down = True
    response = ex.post(ex.harness.add_user())
    assert response.status_code == 503
    assert ex.publisher.attempts == 0


# --- reading ----------------------------------------------------------------------------------


def test_get_shows_the_queue_position_then_the_result(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    url = f"/api/v1/executions/{execution_id}"
    ex.views.positions[execution_id] = 3
    queued = ex.client.get(url, headers=ex.harness.bearer(user)).json()
    assert (queued["status"], queued["queue_position"], queued["stdout"]) == ("queued", 3, None)

    usage = ResourceUsageView(cpu_time_ms=1.5, wall_time_ms=2.5, peak_memory_kb=900)
    ex.store.move(execution_id, ExecutionStatus.COMPLETED, T0, exit_code=0)
    ex.views.results[execution_id] = ExecutionResult(
        stdout="hi\n", stderr="", stdout_truncated=True, resource_usage=usage
    )
    done = ex.client.get(url, headers=ex.harness.bearer(user)).json()
    assert done["status"] == "completed"
    assert (done["stdout"], done["stdout_truncated"], done["exit_code"]) == ("hi\n", True, 0)
    assert done["queue_position"] is None
    assert done["resource_usage"] == usage.model_dump()
    assert [c["status"] for c in done["status_history"]] == ["queued", "completed"]


def test_executions_are_the_callers_own(ex: Executions) -> None:
    alice, bob = ex.harness.add_user(), ex.harness.add_user()
    mine = ex.post(alice).json()["execution_id"]
    ex.clock.now += timedelta(seconds=1)
    newer = ex.post(alice).json()["execution_id"]
    ex.post(bob)
    page = ex.client.get("/api/v1/executions", headers=ex.harness.bearer(alice)).json()
    assert page["total"] == 2
    assert [i["execution_id"] for i in page["items"]] == [newer, mine]
    other = ex.client.get(f"/api/v1/executions/{mine}", headers=ex.harness.bearer(bob))
    assert other.status_code == 404


# --- cancel -----------------------------------------------------------------------------------


def _cancel(ex: Executions, user: User, execution_id: str) -> httpx.Response:
    url = f"/api/v1/executions/{execution_id}/cancel"
    response: httpx.Response = ex.client.post(url, headers=ex.harness.bearer(user))
    return response


def test_the_owner_cancels(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    response = _cancel(ex, user, execution_id)
    assert response.status_code == 202
    assert response.json() == {"execution_id": execution_id, "status": "cancelling"}
    [cancel] = [e for e in ex.publisher.sent if isinstance(e, ExecutionCancelRequested)]
    assert (cancel.execution_id, cancel.correlation_id) == (execution_id, execution_id)
    assert (cancel.user_id, cancel.payload.requested_by) == (user.id, user.id)


def test_another_user_cannot_cancel_but_an_admin_can(ex: Executions) -> None:
    owner = ex.harness.add_user()
    execution_id = ex.post(owner).json()["execution_id"]
    other = _cancel(ex, ex.harness.add_user(), execution_id)
    assert other.status_code == 404
    assert other.json()["detail"] == f"execution {execution_id} not found"
    assert _cancel(ex, owner, "no-such-execution").status_code == 404
    admin = ex.harness.add_user(role=Role.ADMIN)
    assert _cancel(ex, admin, execution_id).status_code == 202
    [cancel] = [e for e in ex.publisher.sent if isinstance(e, ExecutionCancelRequested)]
    assert (cancel.user_id, cancel.payload.requested_by) == (owner.id, admin.id)


def test_a_terminal_execution_cannot_be_cancelled(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    ex.store.move(execution_id, ExecutionStatus.COMPLETED, T0)
    response = _cancel(ex, user, execution_id)
    assert response.status_code == 409
    assert response.json()["detail"] == f"execution {execution_id} already ended as completed"
    assert not any(isinstance(e, ExecutionCancelRequested) for e in ex.publisher.sent)


def test_a_cancel_the_broker_refuses_is_503(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    ex.publisher.outcomes = [PublishError("no broker")]
    response = _cancel(ex, user, execution_id)
    assert response.status_code == 503
    assert response.json()["detail"] == "the cancel request could not be queued; retry"


# --- server-sent events -----------------------------------------------------------------------


def _events(body: str) -> list[dict[str, Any]]:
    return [
        json.loads(line.removeprefix("data: "))
        for line in body.splitlines()
        if line.startswith("data: ")
    ]


async def _stream(ex: Executions, user: User, execution_id: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=ex.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await asyncio.wait_for(
            client.get(
                f"/api/v1/executions/{execution_id}/events", headers=ex.harness.bearer(user)
            ),
            timeout=10,
        )


async def test_the_stream_replays_the_stored_history_then_live_changes(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    started, finished = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)

    async def lifecycle() -> None:
        await asyncio.wait_for(ex.feed.subscribed.wait(), timeout=10)
        for status, at in [
            (ExecutionStatus.QUEUED, T0),  # already sent from the history: not again
            (ExecutionStatus.RUNNING, started),
            (ExecutionStatus.COMPLETED, finished),
            (ExecutionStatus.CANCELLED, finished),  # after the terminal one: never sent
        ]:
            await ex.feed.publish(execution_id, StatusChange(status=status, at=at))

    publishing = asyncio.create_task(lifecycle())
    response = await _stream(ex, user, execution_id)
    await publishing
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert _events(response.text) == [
        {"execution_id": execution_id, "status": "queued", "at": T0.isoformat()},
        {"execution_id": execution_id, "status": "running", "at": started.isoformat()},
        {"execution_id": execution_id, "status": "completed", "at": finished.isoformat()},
    ]
    assert response.text.count("event: status\n") == 3


async def test_an_idle_stream_rereads_the_store_and_ends_at_a_missed_terminal_status(
    ex: Executions,
) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]

    async def finish_unannounced() -> None:
        await asyncio.wait_for(ex.feed.subscribed.wait(), timeout=10)
        ex.store.move(execution_id, ExecutionStatus.TIMED_OUT, T0 + timedelta(seconds=3))

    finishing = asyncio.create_task(finish_unannounced())
    response = await _stream(ex, user, execution_id)
    await finishing
    assert ": keep-alive" in response.text
    assert [e["status"] for e in _events(response.text)] == ["queued", "timed_out"]


async def test_the_stream_of_an_ended_execution_is_its_history(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    ex.store.move(execution_id, ExecutionStatus.RUNNING, T0)
    ex.store.move(execution_id, ExecutionStatus.FAILED, T0, error="boom")
    response = await _stream(ex, user, execution_id)
    assert [e["status"] for e in _events(response.text)] == ["queued", "running", "failed"]
    assert ": keep-alive" not in response.text


async def test_the_stream_is_404_for_another_user(ex: Executions) -> None:
    execution_id = ex.post(ex.harness.add_user()).json()["execution_id"]
    response = await _stream(ex, ex.harness.add_user(), execution_id)
    assert response.status_code == 404
    # Subscribed before the one read that found it not theirs, and closed again at once.
    assert ex.feed.queues.get(execution_id) == []


async def test_a_stream_reads_the_store_once_and_closes_its_subscription(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    ex.store.move(execution_id, ExecutionStatus.COMPLETED, T0)
    reads_before = ex.store.reads

    response = await _stream(ex, user, execution_id)

    assert [e["status"] for e in _events(response.text)] == ["queued", "completed"]
    assert ex.store.reads - reads_before == 1  # ownership and history: one read
    assert ex.feed.queues.get(execution_id) == []


async def test_a_stream_never_iterated_still_closes_its_subscription(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    stream = await ex.service.stream(user, execution_id)
    assert len(ex.feed.queues[execution_id]) == 1

    await stream.close()  # what the route's background task does after the response

    assert ex.feed.queues[execution_id] == []


# --- the lifecycle consumer -----------------------------------------------------------------


def _context() -> MessageContext:
    return MessageContext(
        topic="execution_events",
        partition=0,
        offset=0,
        key=None,
        headers={},
        group_id="api-status",
        attempt=1,
        span=INVALID_SPAN,
    )


async def test_lifecycle_events_move_the_execution_and_fan_out_once(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    handlers = LifecycleHandlers(ex.store, ex.feed)
    started_at = T0 + timedelta(seconds=1)
    started = ExecutionStarted(
        producer=ProducerInfo(service="coordinator", version="test"),
        correlation_id=execution_id,
        execution_id=execution_id,
        occurred_at=started_at,
        payload=ExecutionStartedPayload(runner="r1", started_at=started_at, queue_wait_ms=5),
    )
    async with ex.feed.subscribe(execution_id) as changes:
        await handlers.on_started(started, _context())
        await handlers.on_started(started, _context())  # a redelivery: not applied, not sent
        ex.feed.idle_s = 0.01
        assert await anext(changes) == StatusChange(status=ExecutionStatus.RUNNING, at=started_at)
        assert await anext(changes) is None
    stored = ex.store.executions[execution_id]
    assert (stored.status, stored.started_at) == (ExecutionStatus.RUNNING, started_at)


async def test_a_status_the_feed_cannot_carry_is_still_applied(ex: Executions) -> None:
    class DownFeed(FakeFeed):
        async def publish(self, execution_id: str, change: StatusChange) -> None:
            raise DependencyUnavailableError("status feed unavailable", dependency="redis")

    user = ex.harness.add_user()
    execution_id = ex.post(user).json()["execution_id"]
    cancelled = ExecutionCancelled(
        producer=ProducerInfo(service="coordinator", version="test"),
        correlation_id=execution_id,
        execution_id=execution_id,
        occurred_at=T0,
        payload=ExecutionCancelledPayload(
            reason="cancelled by its owner", cancelled_by=user.id, was_running=False
        ),
    )
    await LifecycleHandlers(ex.store, DownFeed()).on_cancelled(cancelled, _context())
    stored = ex.store.executions[execution_id]
    assert (stored.status, stored.error) == (ExecutionStatus.CANCELLED, "cancelled by its owner")
    assert stored.finished_at == T0


# --- issue 14: limits, args, files, expected output, base64, runtimes ------------------------


def test_only_a_timeout_is_accepted_and_the_event_carries_every_limit(ex: Executions) -> None:
    response = ex.post(ex.harness.add_user(), {**BODY, "limits": {"timeout_s": 2}})
    assert response.status_code == 202, response.text
    [event] = ex.requested()
    assert event.payload.limits.model_dump() == {**DEFAULT_LIMITS.model_dump(), "timeout_s": 2.0}


def test_args_files_and_expected_output_reach_the_event(ex: Executions) -> None:
    body = {
        **BODY,
        "args": ["in.txt", "-v"],
        "files": [{"name": "in.txt", "content": "3 4\n"}],
        "expected_stdout": "7",
    }
    assert ex.post(ex.harness.add_user(), body).status_code == 202
    [event] = ex.requested()
    assert event.payload.args == ("in.txt", "-v")
    [file] = event.payload.files
    assert (file.name, file.content, file.encoding) == ("in.txt", "3 4\n", "utf-8")
    assert event.payload.expected_stdout == "7"


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        (
            {"limits": {"max_processes": 65}},
            "limits.max_processes: 65 is above the maximum 64 for python",
        ),
        (
            {"files": [{"name": "../../etc/passwd", "content": "x"}]},
            "files[0].name: '../../etc/passwd' leaves the working directory (..)",
        ),
        (
            {"files": [{"name": "main.py", "content": "x"}]},
            "files[0].name: 'main.py' clashes with the script's own file 'main.py'",
        ),
        ({"args": ["a\u0000b"]}, "args[0]: contains a NUL character"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    ex: Executions, extra: dict[str, Any], detail: str
) -> None:
    response = ex.post(ex.harness.add_user(), {**BODY, **extra})
    assert response.status_code == 422
    assert response.json()["detail"] == detail
    assert ex.store.executions == {}


def _post_base64(ex: Executions, user: User, body: dict[str, Any]) -> httpx.Response:
    response: httpx.Response = ex.client.post(
        EXECUTE, params={"base64": "true"}, json=body, headers=ex.harness.bearer(user)
    )
    return response


def test_base64_inputs_are_accepted_and_sent_as_base64(ex: Executions) -> None:
    body = {
        "language": "python",
        "script": base64.b64encode(b"print(1)").decode(),
        "stdin": base64.b64encode(bytes([0, 255])).decode(),
        "files": [{"name": "blob", "content": base64.b64encode(bytes(range(50))).decode()}],
    }
    assert _post_base64(ex, ex.harness.add_user(), body).status_code == 202
    [event] = ex.requested()
    assert event.payload.script == "print(1)"
    assert (event.payload.stdin, event.payload.stdin_encoding) == ("AP8=", "base64")
    assert base64.b64decode(event.payload.files[0].content) == bytes(range(50))


def test_invalid_base64_is_422(ex: Executions) -> None:
    response = _post_base64(ex, ex.harness.add_user(), {"language": "python", "script": "pr!nt"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("script: not valid base64")
    assert ex.publisher.attempts == 0


def test_get_gives_the_verdict_and_base64_output_when_asked(ex: Executions) -> None:
    user = ex.harness.add_user()
    execution_id = ex.post(user, {**BODY, "expected_stdout": "x"}).json()["execution_id"]
    ex.store.move(execution_id, ExecutionStatus.COMPLETED, T0, exit_code=0)
    raw = bytes(range(256))
    ex.views.results[execution_id] = ExecutionResult(
        stdout=raw.decode(errors="replace"), stdout_raw=raw, stderr="", verdict="wrong_answer"
    )
    url = f"/api/v1/executions/{execution_id}"
    plain = ex.client.get(url, headers=ex.harness.bearer(user)).json()
    assert (plain["verdict"], plain["encoding"]) == ("wrong_answer", "utf-8")
    encoded = ex.client.get(url, params={"base64": "true"}, headers=ex.harness.bearer(user))
    assert encoded.json()["encoding"] == "base64"
    assert base64.b64decode(encoded.json()["stdout"]) == raw
    assert encoded.json()["stderr"] == ""


def test_runtimes_tell_each_limits_default_and_maximum(ex: Executions) -> None:
    [runtime] = ex.client.get(
        "/api/v1/runtimes", headers=ex.harness.bearer(ex.harness.add_user())
    ).json()
    assert runtime["script_file"] == "main.py"
    assert runtime["limits"] == {
        "defaults": DEFAULT_LIMITS.model_dump(),
        "maximums": MAX_LIMITS.model_dump(),
    }


def test_the_openapi_documents_the_new_fields_and_the_base64_flag(ex: Executions) -> None:
    spec = ex.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("timeout_s", "memory_mb", "cpu_time_s", "max_processes", "max_output_kb"):
        assert schemas["Limits"]["properties"][name]["description"]
    request = schemas["ExecuteRequest"]["properties"]
    assert {"args", "files", "expected_stdout"} <= set(request)
    assert schemas["ExecuteRequest"]["examples"]
    post = spec["paths"]["/api/v1/execute"]["post"]
    get = spec["paths"]["/api/v1/executions/{execution_id}"]["get"]
    for operation in (post, get):
        assert "base64" in {p["name"] for p in operation["parameters"]}
    assert "verdict" in schemas["ExecutionView"]["properties"]
    assert "limits" in schemas["RuntimeInfo"]["properties"]


def test_args_change_the_idempotency_fingerprint(ex: Executions) -> None:
    user = ex.harness.add_user()
    assert ex.post(user, {**BODY, "args": ["a"]}, key="k-args").status_code == 202
    again = ex.post(user, {**BODY, "args": ["b"]}, key="k-args")
    assert again.status_code == 422


# --- issue 14: ?wait=true, batches, ?ids= -------------------------------------------------------


async def _async(value: Any) -> Any:
    return value


def _app_with(ex: Executions, **bounds: Any) -> FastAPI:
    return build_app(
        ex.harness.app.state.api,
        executions=ex.service,
        execution_bounds=ExecutionRouteBounds(**bounds),
    )


async def _post_waiting(
    app: FastAPI, ex: Executions, user: User, body: dict[str, Any]
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await asyncio.wait_for(
            client.post(f"{EXECUTE}?wait=true", json=body, headers=ex.harness.bearer(user)),
            timeout=10,
        )


async def test_wait_answers_200_with_the_whole_result_when_it_ends_in_time(
    ex: Executions,
) -> None:
    user = ex.harness.add_user()
    done_at = T0 + timedelta(seconds=1)

    async def lifecycle() -> None:
        # Subscribed before the request is published: wait for both.
        await asyncio.wait_for(ex.feed.subscribed.wait(), timeout=10)
        published = await eventually(lambda: _async(ex.requested() or None), timeout_s=10)
        execution_id = published[0].execution_id or ""
        ex.views.results[execution_id] = ExecutionResult(stdout="45\n")
        ex.store.move(execution_id, ExecutionStatus.COMPLETED, done_at, exit_code=0)
        await ex.feed.publish(
            execution_id, StatusChange(status=ExecutionStatus.COMPLETED, at=done_at)
        )

    ending = asyncio.create_task(lifecycle())
    response = await _post_waiting(_app_with(ex, wait_max_s=5), ex, user, BODY)
    await ending
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["stdout"], body["exit_code"]) == ("completed", "45\n", 0)
    assert (
        body
        == ex.client.get(
            f"/api/v1/executions/{body['execution_id']}", headers=ex.harness.bearer(user)
        ).json()
    )  # the same view GET gives


async def test_wait_answers_202_when_it_has_not_ended_within_the_bound(ex: Executions) -> None:
    user = ex.harness.add_user()
    response = await _post_waiting(_app_with(ex, wait_max_s=0.2), ex, user, BODY)
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert ex.feed.queues[response.json()["execution_id"]] == []  # it let go of the feed


async def test_wait_answers_202_when_the_feed_is_down(ex: Executions) -> None:
    class DownFeed(FakeFeed):
        @asynccontextmanager
        async def subscribe(
            self, execution_id: str
        ) -> AsyncIterator[AsyncIterator[StatusChange | None]]:
            async with super().subscribe(execution_id) as changes:
                if self.idle_s > 0:  # always: this feed has lost its subscription
                    raise DependencyUnavailableError("status feed unavailable", dependency="redis")
                yield changes

    service = ExecutionService(
        executions=ex.store,
        views=ex.views,
        publisher=ex.publisher,
        feed=DownFeed(),
        policy=POLICY,
        producer=ProducerInfo(service="integr8scode-api", version="test"),
        submit_timeout_s=SUBMIT_TIMEOUT_S,
        clock=ex.clock,
    )
    app = build_app(ex.harness.app.state.api, executions=service)
    response = await _post_waiting(app, ex, ex.harness.add_user(), BODY)
    assert response.status_code == 202
    assert len(ex.requested()) == 1  # accepted all the same


def _batch(ex: Executions, user: User, submissions: list[dict[str, Any]]) -> httpx.Response:
    response: httpx.Response = ex.client.post(
        "/api/v1/executions/batch",
        json={"submissions": submissions},
        headers=ex.harness.bearer(user),
    )
    return response


def test_a_batch_gives_each_submission_its_execution_or_its_own_error(ex: Executions) -> None:
    user = ex.harness.add_user()
    bad = {"script": "x", "language": "cobol"}
    response = _batch(ex, user, [BODY, bad, {**BODY, "script": "print(2)"}])
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 2
    first, refused, third = body["items"]
    assert [item["index"] for item in body["items"]] == [0, 1, 2]
    assert first["execution_id"]
    assert third["execution_id"]
    assert first["execution_id"] != third["execution_id"]
    assert refused["execution_id"] is None
    assert refused["error"]["status"] == 422
    assert "unknown language 'cobol'" in refused["error"]["detail"]
    assert [e.payload.script for e in ex.requested()] == [BODY["script"], "print(2)"]


@pytest.mark.parametrize("count", [0, 21])
def test_an_empty_or_oversized_batch_is_422(ex: Executions, count: int) -> None:
    response = _batch(ex, ex.harness.add_user(), [BODY] * count)
    assert response.status_code == 422
    assert "submissions" in response.text
    assert ex.requested() == []


async def test_a_submission_over_the_execute_rate_limit_gets_429_and_the_rest_go_on(
    ex: Executions,
) -> None:
    user = ex.harness.add_user()
    answers = iter([None, 2.5, None])

    async def admit() -> float | None:
        return next(answers)

    batch = await ex.service.submit_batch(
        user,
        [ExecuteRequest.model_validate(BODY)] * 3,
        max_batch=20,
        admit=admit,
        client_address=None,
    )
    assert batch.accepted == 2
    limited = batch.items[1]
    assert limited.execution_id is None
    assert limited.error is not None
    assert (limited.error.status, limited.error.retry_after_s) == (429, 2.5)
    assert "retry after 2.5 s" in limited.error.detail


def test_ids_answers_those_executions_in_order_and_lists_the_rest_missing(ex: Executions) -> None:
    user, other = ex.harness.add_user(), ex.harness.add_user()
    first = ex.post(user).json()["execution_id"]
    second = ex.post(user).json()["execution_id"]
    theirs = ex.post(other).json()["execution_id"]
    response = ex.client.get(
        f"/api/v1/executions?ids={second},{theirs},nope,{first},{second}",
        headers=ex.harness.bearer(user),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["execution_id"] for item in body["items"]] == [second, first]
    assert body["missing"] == [theirs, "nope"]


@pytest.mark.parametrize("ids", [",", ",,", ""])
def test_ids_without_any_is_422(ex: Executions, ids: str) -> None:
    user = ex.harness.add_user()
    response = ex.client.get(f"/api/v1/executions?ids={ids}", headers=ex.harness.bearer(user))
    assert response.status_code == 422
    assert "ids: give at least one execution id" in response.json()["detail"]


def test_too_many_ids_is_422(ex: Executions) -> None:
    ids = ",".join(f"id-{i}" for i in range(51))
    response = ex.client.get(
        f"/api/v1/executions?ids={ids}", headers=ex.harness.bearer(ex.harness.add_user())
    )
    assert response.status_code == 422
    assert "ids: 51 is above the maximum 50" in response.json()["detail"]


async def test_each_batch_item_is_a_trace_of_its_own_linked_to_the_batch_request(
    ex: Executions,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    service = ExecutionService(
        executions=ex.store,
        views=ex.views,
        publisher=ex.publisher,
        feed=ex.feed,
        policy=POLICY,
        producer=ProducerInfo(service="integr8scode-api", version="test"),
        submit_timeout_s=SUBMIT_TIMEOUT_S,
        clock=ex.clock,
        tracer=tracer,
    )
    user = ex.harness.add_user()

    async def admit() -> float | None:
        return None

    with tracer.start_as_current_span("POST /api/v1/executions/batch") as batch_span:
        batch = await service.submit_batch(
            user,
            [ExecuteRequest.model_validate(BODY)] * 2,
            max_batch=20,
            admit=admit,
            client_address=None,
        )
    assert batch.accepted == 2
    items = [s for s in exporter.get_finished_spans() if s.name == "execute.batch_item"]
    assert len(items) == 2
    batch_context = batch_span.get_span_context()
    traces = {item.context.trace_id for item in items}
    assert len(traces) == 2
    assert batch_context.trace_id not in traces
    for item in items:
        assert item.parent is None
        assert [link.context.span_id for link in item.links] == [batch_context.span_id]
    # What each item published went out in that item's trace.
    assert {parent.trace_id for parent in ex.publisher.parents} == traces


async def test_a_waiting_retry_with_a_known_key_waits_for_that_execution(ex: Executions) -> None:
    user = ex.harness.add_user()
    first = ex.post(user, key="k-wait").json()["execution_id"]
    done_at = T0 + timedelta(seconds=2)
    ex.views.results[first] = ExecutionResult(stdout="done\n")
    ex.store.move(first, ExecutionStatus.COMPLETED, done_at, exit_code=0)
    transport = httpx.ASGITransport(app=_app_with(ex, wait_max_s=5))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        headers = {**ex.harness.bearer(user), "Idempotency-Key": "k-wait"}
        response = await client.post(f"{EXECUTE}?wait=true", json=BODY, headers=headers)
    assert response.status_code == 200, response.text
    assert (response.json()["execution_id"], response.json()["stdout"]) == (first, "done\n")
    assert len(ex.requested()) == 1  # the retry published nothing
