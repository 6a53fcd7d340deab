"""handlers.requests: execution.requested queues a saga; a cancel request ends or flags it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from integr8scode_coordinator.domain.saga import SagaStatus
from integr8scode_events import (
    ExecutionCancelled,
    ExecutionCancelRequested,
    ExecutionRequested,
    ProducerInfo,
)
from integr8scode_events.payloads import (
    ExecutionCancelRequestedPayload,
    ExecutionLimits,
    ExecutionRequestedPayload,
)

if TYPE_CHECKING:
    from conftest import Harness

PRODUCER = ProducerInfo(service="execution-api", version="test")


def _requested(execution_id: str, user_id: str | None = "user-1") -> ExecutionRequested:
    return ExecutionRequested(
        producer=PRODUCER,
        correlation_id=f"corr-{execution_id}",
        execution_id=execution_id,
        user_id=user_id,
        payload=ExecutionRequestedPayload(
            script="print(sum(range(10)))",
            language="python",
            language_version="3.11",
            stdin="7",
            limits=ExecutionLimits(timeout_s=4.0, memory_mb=64),
        ),
    )


def _cancel(execution_id: str, by: str = "user-1") -> ExecutionCancelRequested:
    return ExecutionCancelRequested(
        producer=PRODUCER,
        correlation_id=f"corr-{execution_id}",
        execution_id=execution_id,
        user_id="user-1",
        payload=ExecutionCancelRequestedPayload(requested_by=by),
    )


async def test_a_request_is_queued_and_wakes_the_scheduler(harness: Harness) -> None:
    scheduler = harness.scheduler()
    handlers = harness.handlers(scheduler)
    span = harness.tracer.start_span("kafka.consume")

    await handlers.on_requested(_requested("ex-h1"), harness.context(span))

    saga = harness.store.sagas["ex-h1"]
    assert saga.status is SagaStatus.QUEUED
    assert (saga.user_id, saga.correlation_id) == ("user-1", "corr-ex-h1")
    assert (saga.request.stdin, saga.request.timeout_s, saga.request.memory_mb) == ("7", 4.0, 64)
    assert scheduler._wake.is_set()


async def test_a_redelivered_request_is_marked_not_accepted(harness: Harness) -> None:
    handlers = harness.handlers(harness.scheduler())
    event = _requested("ex-h2")
    await handlers.on_requested(event, harness.context(harness.tracer.start_span("first")))
    span = harness.tracer.start_span("again")

    await handlers.on_requested(event, harness.context(span))
    span.end()

    [again] = harness.spans("again")
    assert (again.attributes or {})["saga.accepted"] is False
    assert len(harness.store.sagas) == 1


async def test_a_request_without_a_user_is_refused(harness: Harness) -> None:
    handlers = harness.handlers(harness.scheduler())
    with pytest.raises(ValueError, match="user_id"):
        await handlers.on_requested(
            _requested("ex-h3", user_id=None), harness.context(harness.tracer.start_span("c"))
        )
    assert harness.store.sagas == {}


async def test_cancelling_a_queued_saga_ends_it_at_once(harness: Harness) -> None:
    handlers = harness.handlers(harness.scheduler())
    await harness.saga.accept(harness.request("ex-q"))
    span = harness.tracer.start_span("cancel")

    await handlers.on_cancel_requested(_cancel("ex-q", by="admin-1"), harness.context(span))
    span.end()

    assert harness.store.status("ex-q") is SagaStatus.CANCELLED
    [event] = harness.publisher.of("ex-q")
    assert isinstance(event, ExecutionCancelled)
    assert event.payload.was_running is False
    assert event.payload.cancelled_by == "admin-1"
    assert not harness.store.sagas["ex-q"].cancel_requested
    [cancel] = harness.spans("cancel")
    assert (cancel.attributes or {})["saga.cancel"] == "cancelled while queued"


async def test_cancelling_a_local_run_kills_it(harness: Harness) -> None:
    harness.runner.hold = asyncio.Event()
    scheduler = harness.scheduler()
    handlers = harness.handlers(scheduler)
    [running] = harness.queue("user-1", 1, datetime.now(UTC))
    await scheduler._admit()
    await harness.runner.wait_started(running)
    span = harness.tracer.start_span("cancel")

    await handlers.on_cancel_requested(_cancel(running), harness.context(span))
    span.end()

    assert harness.store.sagas[running].cancel_requested
    assert harness.runner.cancels[running].is_set()
    [cancel] = harness.spans("cancel")
    assert (cancel.attributes or {})["saga.cancel"] == "killed"
    await harness.settle()
    assert harness.store.status(running) is SagaStatus.CANCELLED
    [_, cancelled] = harness.publisher.of(running)
    assert isinstance(cancelled, ExecutionCancelled)
    assert cancelled.payload.was_running is True


async def test_cancelling_a_run_of_another_instance_flags_it(harness: Harness) -> None:
    handlers = harness.handlers(harness.scheduler())
    request = harness.request("ex-elsewhere")
    lease = datetime.now(UTC) + timedelta(seconds=30)
    harness.saga_doc(request, SagaStatus.RUNNING, owner="coordinator-b", lease_until=lease)
    span = harness.tracer.start_span("cancel")

    await handlers.on_cancel_requested(_cancel("ex-elsewhere"), harness.context(span))
    span.end()

    assert harness.store.sagas["ex-elsewhere"].cancel_requested
    assert harness.store.status("ex-elsewhere") is SagaStatus.RUNNING
    assert harness.publisher.events == []
    [cancel] = harness.spans("cancel")
    assert (cancel.attributes or {})["saga.cancel"] == "flagged for its owner"


@pytest.mark.parametrize("known", [True, False], ids=["finished", "unknown"])
async def test_cancelling_what_is_not_active_does_nothing(harness: Harness, known: bool) -> None:
    handlers = harness.handlers(harness.scheduler())
    if known:
        await harness.saga.accept(harness.request("ex-gone", language="cobol"))  # failed at once
    published = list(harness.publisher.events)
    span = harness.tracer.start_span("cancel")

    await handlers.on_cancel_requested(_cancel("ex-gone"), harness.context(span))
    span.end()

    assert harness.publisher.events == published
    if known:
        assert harness.store.status("ex-gone") is SagaStatus.FAILED
        assert not harness.store.sagas["ex-gone"].cancel_requested
    [cancel] = harness.spans("cancel")
    assert (cancel.attributes or {})["saga.cancel"] == "nothing to cancel"
