"""Executions in the Mongo-wire store (documents in the shape other services read), the
coordinator's read model, and the status feed on Redis."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pymongo import AsyncMongoClient

from integr8scode_api.adapters.coordinator_views import CoordinatorViews
from integr8scode_api.adapters.mongo_executions import OUTBOX_COLLECTION, MongoExecutions
from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.execution_limits import ResolvedLimits
from integr8scode_api.domain.executions import (
    CompileView,
    ExecutionResult,
    ExecutionStatus,
    NewExecution,
    ResourceUsageView,
    Runtime,
    StatusChange,
    Submission,
)
from integr8scode_events import StoredTraceContext

if TYPE_CHECKING:
    from conftest import LiveStack

# What BSON keeps: milliseconds.
T0 = datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
BASE_FIELDS = {
    "_id",
    "user_id",
    "status",
    "language",
    "language_version",
    "script_length",
    "limits",
    "idempotency_key",
    "created_at",
    "trace_id",
    "correlation_id",
    "status_history",
}


def _store(live: LiveStack) -> MongoExecutions:
    db = live.mongo[live.database]
    return MongoExecutions(db["executions"], db["idempotency_keys"], db[OUTBOX_COLLECTION])


def _new(
    execution_id: str, user_id: str = "u1", *, key: str | None = None, at: datetime = T0
) -> NewExecution:
    return NewExecution(
        execution_id=execution_id,
        user_id=user_id,
        language="python",
        language_version="3.12",
        script_length=11,
        limits=ResolvedLimits(
            timeout_s=5, memory_mb=128, cpu_time_s=5, max_processes=64, max_output_kb=1024
        ),
        created_at=at,
        trace_id="ab" * 16,
        idempotency_key=key,
        request_fingerprint="fp" if key else None,
        submission=Submission.PENDING if key else None,
    )


async def _doc(live: LiveStack, execution_id: str) -> dict[str, Any]:
    doc = await live.mongo[live.database]["executions"].find_one({"_id": execution_id})
    assert doc is not None
    return doc


async def test_a_new_execution_is_stored_in_the_documented_shape(live: LiveStack) -> None:
    store = _store(live)
    assert await store.create(_new("e1"))
    assert not await store.create(_new("e1"))  # its id exists already
    assert await store.create(_new("e2", key="k"))

    plain = await _doc(live, "e1")
    assert set(plain) == BASE_FIELDS
    assert plain["status"] == "queued"
    assert plain["limits"] == {
        "timeout_s": 5.0,
        "memory_mb": 128,
        "cpu_time_s": 5.0,
        "max_processes": 64,
        "max_output_kb": 1024,
    }
    assert plain["correlation_id"] == "e1"
    assert plain["idempotency_key"] is None
    assert [c["status"] for c in plain["status_history"]] == ["queued"]
    keyed = await _doc(live, "e2")
    assert set(keyed) == BASE_FIELDS | {"request_fingerprint", "submission"}
    assert (keyed["request_fingerprint"], keyed["submission"]) == ("fp", "pending")

    stored = await store.get("e2")
    assert stored is not None
    assert (stored.execution_id, stored.user_id, stored.status) == ("e2", "u1", "queued")
    assert stored.created_at == T0  # read back aware, whatever the client's tz setting
    assert stored.submission is Submission.PENDING
    assert stored.request_fingerprint == "fp"
    assert stored.status_history == (StatusChange(status=ExecutionStatus.QUEUED, at=T0),)
    assert await store.get("missing") is None


async def test_a_users_executions_newest_first(live: LiveStack) -> None:
    store = _store(live)
    for i in range(3):
        await store.create(_new(f"a{i}", "alice", at=T0 + timedelta(seconds=i)))
    await store.create(_new("b0", "bob"))
    page, total = await store.list_for_user("alice", limit=2, offset=0)
    assert total == 3
    assert [e.execution_id for e in page] == ["a2", "a1"]
    rest, _ = await store.list_for_user("alice", limit=2, offset=2)
    assert [e.execution_id for e in rest] == ["a0"]
    everyone, total_all = await store.list_for_user(None, limit=10, offset=0)
    assert total_all == 4
    assert {e.execution_id for e in everyone} == {"a0", "a1", "a2", "b0"}


async def test_an_idempotency_key_binds_one_execution_until_released(live: LiveStack) -> None:
    store = _store(live)
    assert await store.claim_idempotency_key("u1", "k", "first") is None
    assert await store.claim_idempotency_key("u1", "k", "second") == "first"
    assert await store.claim_idempotency_key("u2", "k", "other") is None  # per user
    bound_at = await store.idempotency_key_bound_at("u1", "k")
    assert bound_at is not None
    assert abs((bound_at.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()) < 60
    await store.release_idempotency_key("u1", "k")
    assert await store.idempotency_key_bound_at("u1", "k") is None
    assert await store.claim_idempotency_key("u1", "k", "third") is None


async def test_the_outbox_keeps_unconfirmed_requests_until_confirmed(live: LiveStack) -> None:
    store = _store(live)
    await store.create(_new("e1", key="k1"))
    await store.create(_new("e2", key="k2"))
    context = StoredTraceContext(f"00-{'ab' * 16}-{'cd' * 8}-01", "vendor=x")
    await store.to_outbox("e1", '{"event": 1}', context)
    # idempotent: the first one stays
    await store.to_outbox("e1", '{"event": "again"}', StoredTraceContext())
    await store.to_outbox("e2", '{"event": 2}', StoredTraceContext())
    await store.set_submission("e1", Submission.OUTBOX)
    assert (await _doc(live, "e1"))["submission"] == "outbox"

    entries = await store.outbox_entries(10)
    assert [(e.execution_id, e.event) for e in entries] == [
        ("e1", '{"event": 1}'),
        ("e2", '{"event": 2}'),
    ]
    assert entries[0].trace == context
    assert entries[1].trace.span_context is None
    # The document keeps the request's W3C headers under ``trace_context``, as before.
    stored_entry = await live.mongo[live.database][OUTBOX_COLLECTION].find_one({"_id": "e1"})
    assert stored_entry is not None
    assert stored_entry["trace_context"] == {
        "traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01",
        "tracestate": "vendor=x",
    }
    assert [e.execution_id for e in await store.outbox_entries(1)] == ["e1"]

    await store.confirmed("e1")
    assert [e.execution_id for e in await store.outbox_entries(10)] == ["e2"]
    confirmed = await store.get("e1")
    assert confirmed is not None
    assert confirmed.submission is Submission.ACKED


async def test_not_queued_is_a_provisional_failure_the_lifecycle_overrides(
    live: LiveStack,
) -> None:
    store = _store(live)
    await store.create(_new("e1"))
    await store.mark_not_queued("e1", "not queued")
    failed = await _doc(live, "e1")
    assert (failed["status"], failed["error"], failed["not_queued"]) == (
        "failed",
        "not queued",
        True,
    )
    assert "finished_at" in failed

    # It ran after all: its lifecycle wins, and the provisional error goes with it.
    started = T0 + timedelta(seconds=1)
    assert await store.transition("e1", ExecutionStatus.RUNNING, started, started_at=started)
    ran = await store.get("e1")
    assert ran is not None
    assert (ran.status, ran.error, ran.started_at) == (ExecutionStatus.RUNNING, None, started)
    assert (await _doc(live, "e1"))["not_queued"] is False

    usage = ResourceUsageView(cpu_time_ms=1, wall_time_ms=2, peak_memory_kb=3)
    done_at = T0 + timedelta(seconds=2)
    assert await store.transition(
        "e1",
        ExecutionStatus.COMPLETED,
        done_at,
        exit_code=0,
        resource_usage=usage.model_dump(),
        finished_at=done_at,
    )
    # Terminal: a redelivery or a late event changes nothing, and a failure can't follow.
    assert not await store.transition("e1", ExecutionStatus.COMPLETED, done_at)
    assert not await store.transition("e1", ExecutionStatus.RUNNING, done_at)
    await store.mark_not_queued("e1", "late")
    done = await store.get("e1")
    assert done is not None
    assert (done.status, done.exit_code, done.resource_usage) == ("completed", 0, usage)
    assert [c.status for c in done.status_history] == ["queued", "failed", "running", "completed"]
    assert not await store.transition("missing", ExecutionStatus.RUNNING, T0)


async def test_an_unreachable_server_is_dependency_unavailable() -> None:
    dead: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:1", serverSelectionTimeoutMS=200, connect=False
    )
    try:
        db = dead["x"]
        store = MongoExecutions(db["executions"], db["idempotency_keys"], db[OUTBOX_COLLECTION])
        with pytest.raises(DependencyUnavailableError, match="execution store unavailable"):
            await store.create(_new("e1"))
        with pytest.raises(DependencyUnavailableError):
            await store.get("e1")
        with pytest.raises(DependencyUnavailableError):
            await store.claim_idempotency_key("u", "k", "e1")
        with pytest.raises(DependencyUnavailableError, match="result store unavailable"):
            await CoordinatorViews(db).result("e1")
    finally:
        await dead.close()


async def test_the_coordinators_read_model(live: LiveStack) -> None:
    db = live.mongo[live.database]
    await db["runtimes"].insert_many(
        [
            {"language": "python", "versions": ["3.12", "3.11"], "default_version": "3.12"},
            {"language": "go", "versions": ["1.22"], "default_version": "1.22"},
        ]
    )
    await db["execution_results"].insert_one(
        {
            "_id": "e1",
            "stdout": "hi\n",
            "stderr": "",
            "stdout_truncated": True,
            "resource_usage": {"cpu_time_ms": 1.0, "wall_time_ms": 2.0, "peak_memory_kb": 3},
        }
    )
    await db["saga_queue"].insert_many(
        [{"_id": f"q{i}", "enqueued_at": T0 + timedelta(seconds=i)} for i in range(3)]
    )
    views = CoordinatorViews(db)
    assert await views.runtimes() == [
        Runtime(language="go", versions=["1.22"], default_version="1.22"),
        Runtime(language="python", versions=["3.11", "3.12"], default_version="3.12"),
    ]
    assert await views.result("e1") == ExecutionResult(
        stdout="hi\n",
        stderr="",
        stdout_truncated=True,
        stderr_truncated=False,
        resource_usage=ResourceUsageView(cpu_time_ms=1, wall_time_ms=2, peak_memory_kb=3),
    )
    assert await views.result("missing") is None
    assert await views.queue_position("q0") == 0
    assert await views.queue_position("q2") == 2
    assert await views.queue_position("gone") is None


async def test_the_read_model_gives_raw_output_verdict_and_script_file(live: LiveStack) -> None:
    """Issue 14: what the coordinator adds to ``runtimes`` and ``execution_results``, read
    back through the real driver (the raw output is BSON binary)."""
    db = live.mongo[live.database]
    await db["runtimes"].insert_one(
        {
            "language": "python",
            "versions": ["3.11"],
            "default_version": "3.11",
            "script_file": "main.py",
        }
    )
    raw = bytes(range(256))
    await db["execution_results"].insert_one(
        {
            "_id": "e-bin",
            # As the coordinator stores it: the store refuses a NUL in a string.
            "stdout": raw.decode(errors="replace").replace("\0", "\ufffd"),
            "stdout_raw": raw,
            "stderr": "",
            "verdict": "accepted",
        }
    )
    await db["runtimes"].insert_one(
        {
            "language": "c",
            "versions": ["12"],
            "full_versions": ["12.2.0"],
            "default_version": "12",
            "script_file": "main.c",
            "compiled": True,
        }
    )
    await db["execution_results"].insert_one(
        {
            "_id": "e-cc",
            "stdout": "",
            "stderr": "",
            "error": "compilation failed",
            "compile": {"exit_code": 1, "stdout": "", "stderr": "error", "wall_time_ms": 9.5},
        }
    )
    views = CoordinatorViews(db)
    runtime, python = await views.runtimes()
    assert (runtime.language, runtime.compiled, runtime.full_versions) == ("c", True, ["12.2.0"])
    assert (python.script_file, python.compiled, python.full_versions) == ("main.py", False, [])
    compiled = await views.result("e-cc")
    assert compiled is not None
    assert compiled.compile == CompileView(exit_code=1, stderr="error", wall_time_ms=9.5)
    result = await views.result("e-bin")
    assert result is not None
    assert (result.stdout_raw, result.stderr_raw, result.verdict) == (raw, None, "accepted")
    stdout, stderr = result.output_base64()
    assert base64.b64decode(stdout or "") == raw
    assert stderr == ""
