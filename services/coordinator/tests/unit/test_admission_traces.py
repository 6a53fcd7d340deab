"""Traces of admission and of the scheduler's background passes.

An execution's queue wait and admission are spans of its own trace (under the consume span its
saga stored), before ``saga.execution``; the store calls a pass makes for no single execution
(reading the queue, counting slots, renewing leases, sweeping the outbox) make no span; what a
pass does for one execution (cancel while queued, fail a lost run, republish its terminal event)
goes into that execution's trace. The fake stores make the client spans PyMongo would
(``Harness.trace_store_calls``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from integr8scode_coordinator.domain.saga import SagaStatus
from integr8scode_coordinator.scheduler import SchedulerTiming

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness

PASS_LEVEL = {
    "mongo.held_slots",
    "mongo.oldest_queued",
    "mongo.renew",
    "mongo.cancel_requested",
    "mongo.expired",
    "mongo.take_over",
    "mongo.prolong",
    "mongo.unpublished_terminal",
}


async def _accepted(harness: Harness, execution_id: str, user_id: str = "user-1") -> ReadableSpan:
    """Accept a request under a consume span, as the Kafka handler does; that span."""
    request = harness.request(execution_id, user_id=user_id)
    with harness.tracer.start_as_current_span("kafka.consume", kind=SpanKind.CONSUMER) as span:
        assert await harness.saga.accept(request)
    consume_id = span.get_span_context().span_id
    return next(s for s in harness.spans("kafka.consume") if _span_id(s) == consume_id)


def _in_trace(harness: Harness, root: ReadableSpan) -> list[ReadableSpan]:
    assert root.context is not None
    return [
        s
        for s in harness.spans()
        if s.context is not None and s.context.trace_id == root.context.trace_id
    ]


def _parent(span: ReadableSpan) -> int:
    assert span.parent is not None, f"{span.name} has no parent"
    return int(span.parent.span_id)


def _span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def _times(span: ReadableSpan) -> tuple[int, int]:
    assert span.start_time is not None
    assert span.end_time is not None
    return span.start_time, span.end_time


async def test_queue_wait_and_admission_are_spans_of_the_executions_trace(
    harness: Harness,
) -> None:
    harness.trace_store_calls()
    consume = await _accepted(harness, "ex-traced")
    enqueued_at = harness.store.sagas["ex-traced"].enqueued_at
    scheduler = harness.scheduler()

    await scheduler._admit()
    await harness.settle()

    assert harness.store.status("ex-traced") is SagaStatus.COMPLETED
    names = [s.name for s in harness.spans()]
    assert PASS_LEVEL.isdisjoint(names), names
    # Nothing of the pass or the run started a trace of its own.
    assert len(_in_trace(harness, consume)) == len(harness.spans())

    [wait] = harness.spans("saga.queue_wait")
    [admit] = harness.spans("saga.admit")
    [execution] = harness.spans("saga.execution")
    assert _parent(wait) == _parent(admit) == _parent(execution) == _span_id(consume)
    wait_start, wait_end = _times(wait)
    admit_start, admit_end = _times(admit)
    assert wait_start == int(enqueued_at.timestamp() * 1_000_000_000)
    assert wait_end == admit_start
    assert admit_end <= _times(execution)[0]
    attributes = dict(wait.attributes or {})
    assert attributes["execution.id"] == "ex-traced"
    assert attributes["saga.queue_wait_ms"] == (wait_end - wait_start) / 1_000_000
    assert dict(admit.attributes or {})["saga.admit.outcome"] == "admitted"
    assert dict(admit.attributes or {})["saga.owner"] == harness.saga.instance_id
    # The claim's store calls are the admission's children.
    [claim] = harness.spans("mongo.claim_queued")
    assert _parent(claim) == _span_id(admit)
    # The run's own store calls are traced (it does not inherit the pass's suppression).
    [save] = harness.spans("mongo.save")
    assert save in _in_trace(harness, consume)


async def test_an_attempt_that_finds_no_slot_leaves_no_span(make_harness: MakeHarness) -> None:
    harness = make_harness(global_slots=1)
    harness.runner.hold = asyncio.Event()
    harness.trace_store_calls()
    first = await _accepted(harness, "ex-first", user_id="user-a")
    await _accepted(harness, "ex-second", user_id="user-b")
    scheduler = harness.scheduler()
    await scheduler._admit()  # ex-first takes the only slot
    await harness.runner.wait_started("ex-first")
    harness.exporter.clear()
    tried = harness.slots.reserve_calls.count("ex-second")

    for _ in range(3):  # the cluster is full: every pass tries ex-second again
        await scheduler._admit()

    assert harness.store.status("ex-second") is SagaStatus.QUEUED
    assert harness.slots.reserve_calls.count("ex-second") == tried + 3
    assert harness.spans() == []
    await harness.settle()
    assert [s.name for s in harness.spans("saga.admit")] == []  # ex-first's ended earlier
    assert len(_in_trace(harness, first)) == len(harness.spans())


async def test_a_cancel_found_by_the_admission_pass_goes_into_the_executions_trace(
    harness: Harness,
) -> None:
    harness.trace_store_calls()
    consume = await _accepted(harness, "ex-cancel")
    await harness.store.request_cancel("ex-cancel")
    harness.exporter.clear()

    await harness.scheduler()._admit()

    assert harness.store.status("ex-cancel") is SagaStatus.CANCELLED
    spans = harness.spans()
    assert {s.name for s in spans} == {"mongo.finish", "mongo.mark_published"}
    assert all(_parent(s) == _span_id(consume) for s in spans)
    assert harness.spans("saga.admit") == []


async def test_heartbeat_and_outbox_passes_with_nothing_to_do_make_no_spans(
    harness: Harness,
) -> None:
    harness.runner.hold = asyncio.Event()
    harness.trace_store_calls()
    await _accepted(harness, "ex-held")
    scheduler = harness.scheduler(
        timing=SchedulerTiming(poll_interval_s=0.01, outbox_interval_s=1, outbox_delay_s=0)
    )
    await scheduler._admit()
    await harness.runner.wait_started("ex-held")
    harness.exporter.clear()

    await scheduler._heartbeat()
    await scheduler._outbox()
    await scheduler._janitor()

    assert harness.spans() == []
    await harness.settle()


async def test_the_janitor_fails_a_lost_run_in_the_runs_own_trace(harness: Harness) -> None:
    harness.trace_store_calls()
    consume = await _accepted(harness, "ex-lost")
    saga = harness.store.sagas["ex-lost"]
    saga.status, saga.owner = SagaStatus.RUNNING, "coordinator-dead"
    past = datetime.now(UTC) - timedelta(seconds=30)
    saga.lease_until = past
    harness.slots.hold("ex-lost", saga.user_id, "coordinator-dead", past)
    harness.exporter.clear()

    await harness.scheduler()._janitor()

    assert harness.store.status("ex-lost") is SagaStatus.FAILED
    names = {s.name for s in harness.spans()}
    assert PASS_LEVEL.isdisjoint(names), names
    assert "mongo.get" not in names  # reading the saga to find its context: the pass's
    [recover] = harness.spans("saga.recover")
    assert _parent(recover) == _span_id(consume)
    [finish] = harness.spans("mongo.finish")
    assert _parent(finish) == _span_id(recover)
    assert len(_in_trace(harness, consume)) == len(harness.spans())


async def test_the_outbox_republishes_in_the_executions_trace(harness: Harness) -> None:
    harness.publisher.failing = {"execution.completed"}
    consume = await _accepted(harness, "ex-outbox")
    saga = await harness.store.get("ex-outbox")
    assert saga is not None
    scheduler = harness.scheduler(
        timing=SchedulerTiming(poll_interval_s=0.01, outbox_interval_s=1, outbox_delay_s=0)
    )
    await scheduler._admit()
    await harness.settle()
    assert harness.store.published == set()
    harness.publisher.failing = set()
    harness.trace_store_calls()
    harness.exporter.clear()

    await scheduler._outbox()

    assert harness.store.published == {"ex-outbox"}
    [marked] = harness.spans()
    assert marked.name == "mongo.mark_published"
    assert _parent(marked) == _span_id(consume)


async def test_a_saga_without_a_stored_context_is_admitted_untraced(harness: Harness) -> None:
    harness.trace_store_calls()
    harness.saga_doc(harness.request("ex-legacy"))  # queued before contexts were stored

    await harness.scheduler()._admit()
    await harness.settle()

    assert harness.store.status("ex-legacy") is SagaStatus.COMPLETED
    names = {s.name for s in harness.spans()}
    assert {"saga.queue_wait", "saga.admit", "mongo.claim_queued"}.isdisjoint(names), names
    assert PASS_LEVEL.isdisjoint(names), names
    assert "saga.execution" in names  # the run itself is traced, as before
