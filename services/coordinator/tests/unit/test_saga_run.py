"""ExecutionSaga.run: from a held slot to exactly one terminal state, event and released slot."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from opentelemetry.trace import StatusCode

from integr8scode_coordinator.domain.saga import SagaStatus
from integr8scode_coordinator.sandbox import Outcome
from integr8scode_events import (
    EventEnvelope,
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    ExecutionTimedOut,
)

if TYPE_CHECKING:
    from conftest import Harness


@pytest.mark.parametrize(
    ("outcome", "status", "event_class"),
    [
        ("completed", SagaStatus.COMPLETED, ExecutionCompleted),
        ("timed_out", SagaStatus.TIMED_OUT, ExecutionTimedOut),
        ("failed", SagaStatus.FAILED, ExecutionFailed),
        ("cancelled", SagaStatus.CANCELLED, ExecutionCancelled),
    ],
)
async def test_each_outcome_ends_the_saga_with_its_event(
    harness: Harness, outcome: Outcome, status: SagaStatus, event_class: type[EventEnvelope]
) -> None:
    error = None if outcome == "completed" else f"the run {outcome}"
    harness.runner.default = harness.result(outcome, exit_code=3, stdout="45\n", error=error)
    saga = await harness.reserved(harness.request("ex-run"))

    assert await harness.saga.run(saga, asyncio.Event()) is status

    stored = harness.store.sagas["ex-run"]
    assert stored.status is status
    assert stored.error == error
    assert stored.steps == ["validate", "reserve_slot", "run", "store_result", f"finish:{status}"]
    assert stored.started_at is not None
    assert (stored.owner, stored.lease_until) == (None, None)
    started, terminal = harness.publisher.of("ex-run")
    assert isinstance(started, ExecutionStarted)
    assert started.payload.runner == "fake"
    assert isinstance(terminal, event_class)
    assert harness.store.terminal_events["ex-run"]["event_id"] == str(terminal.event_id)
    assert harness.store.published == {"ex-run"}
    document = harness.results.documents["ex-run"]
    assert (document["status"], document["stdout"], document["error"]) == (status, "45\n", error)
    assert document["resource_usage"] == {
        "cpu_time_ms": 12.0,
        "wall_time_ms": 34.0,
        "peak_memory_kb": 5678,
    }
    assert harness.slots.held == set()
    assert harness.slots.released == ["ex-run"]
    # A timeout is an error for the trace (tail sampling keeps those); the other ends are not.
    [execution] = harness.spans("saga.execution")
    timed_out = status is SagaStatus.TIMED_OUT
    assert (execution.status.status_code is StatusCode.ERROR) is timed_out
    assert (execution.attributes or {}).get("error.type") == ("timeout" if timed_out else None)


async def test_the_sandbox_gets_the_request_under_the_policy_limits(harness: Harness) -> None:
    request = harness.request("ex-limits", timeout_s=7.5, memory_mb=200)
    await harness.saga.run(await harness.reserved(request), asyncio.Event())

    [sandbox] = harness.runner.requests
    assert (sandbox.language, sandbox.language_version, sandbox.script) == (
        "python",
        "3.11",
        request.script,
    )
    assert sandbox.limits.timeout_s == 7.5
    assert sandbox.limits.memory_mb == 200
    assert sandbox.limits.cpu_time_s == 7.5
    assert sandbox.limits.max_output_bytes == harness.policy.max_output_bytes


async def test_a_runner_that_raises_is_compensated(harness: Harness) -> None:
    harness.runner.error = RuntimeError("bwrap vanished")
    saga = await harness.reserved(harness.request("ex-crash"))

    assert await harness.saga.run(saga, asyncio.Event()) is SagaStatus.FAILED

    stored = harness.store.sagas["ex-crash"]
    assert stored.status is SagaStatus.FAILED
    assert stored.error == "platform error: RuntimeError: bwrap vanished"
    started, failed = harness.publisher.of("ex-crash")
    assert isinstance(started, ExecutionStarted)
    assert isinstance(failed, ExecutionFailed)
    assert failed.payload.error_type == "platform_error"
    assert failed.payload.error == stored.error
    assert "ex-crash" not in harness.results.documents
    assert harness.slots.held == set()
    assert harness.slots.released == ["ex-crash"]
    [execution] = harness.spans("saga.execution")
    assert execution.status.status_code is StatusCode.ERROR
    assert [e.name for e in execution.events] == ["exception"]
    assert set(harness.step_spans("ex-crash")) == {"validate", "run", "compensate", "release"}
    assert harness.step_spans("ex-crash")["run"].status.status_code is StatusCode.ERROR


async def test_a_refused_terminal_event_stays_in_the_outbox_until_republished(
    harness: Harness,
) -> None:
    harness.publisher.failing = {"execution.completed"}
    saga = await harness.reserved(harness.request("ex-outbox"))

    assert await harness.saga.run(saga, asyncio.Event()) is SagaStatus.COMPLETED

    assert harness.store.status("ex-outbox") is SagaStatus.COMPLETED
    assert harness.store.published == set()
    assert harness.publisher.terminal("ex-outbox") == []
    assert harness.slots.held == set()

    harness.publisher.failing = set()
    stored = harness.store.terminal_events["ex-outbox"]
    await harness.saga.republish(stored)

    [completed] = harness.publisher.terminal("ex-outbox")
    assert isinstance(completed, ExecutionCompleted)
    assert str(completed.event_id) == stored["event_id"]
    assert completed.payload.output.stdout_preview == "45\n"
    assert harness.store.published == {"ex-outbox"}


async def test_a_refused_started_event_does_not_stop_the_run(harness: Harness) -> None:
    harness.publisher.failing = {"execution.started"}
    saga = await harness.reserved(harness.request("ex-no-started"))

    assert await harness.saga.run(saga, asyncio.Event()) is SagaStatus.COMPLETED

    [completed] = harness.publisher.of("ex-no-started")
    assert isinstance(completed, ExecutionCompleted)
    assert harness.store.published == {"ex-no-started"}


async def test_a_finished_saga_gets_no_second_terminal_event(harness: Harness) -> None:
    saga = await harness.reserved(harness.request("ex-once"))
    await harness.saga.run(saga, asyncio.Event())

    assert await harness.saga.fail_lost(saga) is False
    assert await harness.saga.cancel_queued(saga, cancelled_by="user-1") is False

    [terminal] = harness.publisher.terminal("ex-once")
    assert isinstance(terminal, ExecutionCompleted)
    assert harness.store.status("ex-once") is SagaStatus.COMPLETED
    assert harness.store.sagas["ex-once"].error is None


async def test_concurrent_endings_publish_one_terminal_event(harness: Harness) -> None:
    saga = await harness.reserved(harness.request("ex-race"))

    ended = await asyncio.gather(harness.saga.fail_lost(saga), harness.saga.fail_lost(saga))

    assert sorted(ended) == [False, True]
    assert len(harness.publisher.terminal("ex-race")) == 1


async def test_cancelling_a_queued_saga_only_works_while_it_is_queued(harness: Harness) -> None:
    queued = harness.request("ex-cancel-queued")
    await harness.saga.accept(queued)
    saga = await harness.store.get("ex-cancel-queued")
    assert saga is not None
    reserved = await harness.reserved(harness.request("ex-cancel-reserved"))

    assert await harness.saga.cancel_queued(saga, cancelled_by="user-1") is True
    assert await harness.saga.cancel_queued(reserved, cancelled_by="user-1") is False

    [cancelled] = harness.publisher.of("ex-cancel-queued")
    assert isinstance(cancelled, ExecutionCancelled)
    assert cancelled.payload.was_running is False
    assert cancelled.payload.cancelled_by == "user-1"
    assert harness.store.status("ex-cancel-queued") is SagaStatus.CANCELLED
    assert harness.store.status("ex-cancel-reserved") is SagaStatus.RESERVED
    assert harness.publisher.of("ex-cancel-reserved") == []


async def test_fail_lost_fails_an_active_saga_and_frees_its_slot(harness: Harness) -> None:
    saga = await harness.reserved(harness.request("ex-lost"))

    assert await harness.saga.fail_lost(saga) is True

    [failed] = harness.publisher.of("ex-lost")
    assert isinstance(failed, ExecutionFailed)
    assert failed.payload.error_type == "platform_error"
    assert "coordinator" in failed.payload.error
    assert harness.store.status("ex-lost") is SagaStatus.FAILED
    assert harness.slots.held == set()
    [recover] = harness.spans("saga.recover")
    assert (recover.attributes or {})["saga.id"] == "ex-lost"


async def test_run_spans_are_steps_under_one_saga_execution_span(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("kafka.consume") as consume:
        saga = await harness.reserved(harness.request("ex-spans", user_id="user-7"))
    await harness.saga.run(saga, asyncio.Event())

    [execution] = harness.spans("saga.execution")
    assert execution.context is not None
    assert execution.parent is not None
    assert execution.parent.span_id == consume.get_span_context().span_id
    assert execution.context.trace_id == consume.get_span_context().trace_id
    attributes = execution.attributes or {}
    assert attributes["saga.name"] == "execution"
    assert attributes["saga.id"] == "ex-spans"
    assert attributes["execution.id"] == "ex-spans"
    assert attributes["user.id"] == "user-7"
    assert attributes["execution.status"] == "completed"
    assert float(str(attributes["saga.queue_wait_ms"])) >= 0
    steps = harness.step_spans("ex-spans")
    assert set(steps) == {"validate", "run", "store_result", "release"}
    for name in ("run", "store_result", "release"):
        span = steps[name]
        assert span.parent is not None
        assert span.parent.span_id == execution.context.span_id
        assert dict(span.attributes or {}) == {
            "saga.name": "execution",
            "saga.id": "ex-spans",
            "saga.step": name,
            "execution.id": "ex-spans",
        }
    assert steps["run"].start_time is not None
    assert steps["store_result"].start_time is not None
    assert steps["release"].start_time is not None
    assert steps["run"].start_time < steps["store_result"].start_time
    assert steps["store_result"].start_time < steps["release"].start_time


async def test_a_cancel_set_before_the_run_ends_it_cancelled(harness: Harness) -> None:
    saga = await harness.reserved(harness.request("ex-pre-cancelled"))
    cancel = asyncio.Event()
    cancel.set()

    assert await harness.saga.run(saga, cancel) is SagaStatus.CANCELLED

    [_, cancelled] = harness.publisher.of("ex-pre-cancelled")
    assert isinstance(cancelled, ExecutionCancelled)
    assert cancelled.payload.was_running is True


async def test_a_store_away_for_a_moment_doesnt_fail_a_finished_run(harness: Harness) -> None:
    harness.results.down_for = 2  # two attempts fail, the third stores it (within the retry)
    saga = await harness.reserved(harness.request("ex-store-blip"))

    assert await harness.saga.run(saga, asyncio.Event()) is SagaStatus.COMPLETED

    assert harness.store.status("ex-store-blip") is SagaStatus.COMPLETED
    assert "ex-store-blip" in harness.results.documents
    assert len(harness.publisher.terminal("ex-store-blip")) == 1


async def test_a_store_away_for_good_fails_the_run_with_a_short_reason(harness: Harness) -> None:
    harness.results.down_for = 1000
    saga = await harness.reserved(harness.request("ex-store-gone"))

    assert await harness.saga.run(saga, asyncio.Event()) is SagaStatus.FAILED

    stored = harness.store.sagas["ex-store-gone"]
    assert stored.error == (
        "platform error: the execution store was unavailable; the result could not be kept"
    )
    assert harness.slots.held == set()


async def test_its_own_claimed_run_writes_exclusively_until_half_a_lease_before_its_end(
    harness: Harness,
) -> None:
    saga = await harness.reserved(harness.request("ex-own"))
    assert saga.lease_until is not None

    await harness.saga.run(saga, asyncio.Event())

    # The run step and the finish: both know nobody else can have ended the saga before then.
    until = saga.lease_until - harness.policy.lease / 2
    assert harness.store.exclusive_untils == [until, until]


async def test_a_run_it_does_not_hold_and_a_compensation_read_before_writing(
    harness: Harness,
) -> None:
    foreign = await harness.reserved(harness.request("ex-foreign"))
    foreign.owner = "coordinator-elsewhere"
    await harness.saga.run(foreign, asyncio.Event())
    harness.runner.error = RuntimeError("sandbox broke")
    await harness.saga.run(await harness.reserved(harness.request("ex-broken")), asyncio.Event())

    # ex-foreign: its step and finish; ex-broken: its step (exclusive), then the compensation.
    assert harness.store.exclusive_untils[:2] == [None, None]
    assert harness.store.exclusive_untils[2] is not None
    assert harness.store.exclusive_untils[3:] == [None]
    assert harness.store.status("ex-broken") is SagaStatus.FAILED
