"""Intake and retry attempts over fakes: idempotency, claims, publish failures, lost updates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.polling import eventually

from integr8scode_dlq_processor.domain import transitions as tr
from integr8scode_dlq_processor.domain.dead_letters import Intake
from integr8scode_dlq_processor.domain.errors import ConcurrentUpdateError, NotFoundError
from integr8scode_dlq_processor.domain.ports import ClaimOutcome, Publication
from integr8scode_dlq_processor.domain.records import Status
from integr8scode_dlq_processor.domain.reports import FailureReport
from integr8scode_dlq_processor.domain.updates import KeyedLocks
from integr8scode_dlq_processor.retries import RetryOutcome, RetryRunner
from integr8scode_dlq_processor.scheduler import RetryScheduler

if TYPE_CHECKING:  # conftest is not importable at run time (--import-mode=importlib)
    from conftest import Parts

ReportFactory = Callable[..., FailureReport]


def _runner(parts: Parts, exporter: InMemorySpanExporter | None = None) -> RetryRunner:
    provider = TracerProvider()
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return RetryRunner(
        parts.updater,
        parts.claims,
        parts.republisher,
        owner="me",
        claim_lease=timedelta(seconds=60),
        publish_retry=timedelta(seconds=5),
        tracer=provider.get_tracer("test"),
        clock=parts.clock,
    )


async def test_intake_opens_then_updates_and_skips_redeliveries(
    parts: Parts, make_report: ReportFactory
) -> None:
    first = make_report(partition=1, offset=10)
    opened = await parts.service.receive(first)
    assert opened.intake is Intake.CREATED
    again = await parts.service.receive(first)  # the DLQ message delivered a second time
    assert again.intake is Intake.DUPLICATE
    assert again.record.version == opened.record.version
    twice = await parts.service.receive(make_report(partition=1, offset=11))
    assert twice.intake is Intake.UPDATED  # the same failure dead-lettered twice
    assert twice.record.id == opened.record.id
    assert len(parts.store.records) == 1
    assert twice.record.dlq_positions == ("1:10", "1:11")


async def test_intake_updates_a_record_another_instance_opened_meanwhile(
    parts: Parts, make_report: ReportFactory
) -> None:
    report = make_report()
    other = await parts.service.receive(make_report())
    original_get = parts.store.get
    calls = 0

    async def get_missing_once(record_id: str) -> object:
        nonlocal calls
        calls += 1
        return None if calls == 1 else await original_get(record_id)

    parts.store.get = get_missing_once  # type: ignore[assignment, method-assign]
    received = await parts.service.receive(report)
    assert received.intake is Intake.UPDATED
    assert received.record.id == other.record.id


async def test_an_update_that_lost_a_race_is_reapplied(
    parts: Parts, make_report: ReportFactory
) -> None:
    opened = (await parts.service.receive(make_report())).record
    parts.store.interfere = lambda r: r.model_copy(update={"event_type": "changed.elsewhere"})
    discarded = await parts.service.discard(opened.id, "not needed", "admin-1")
    assert discarded.status is Status.DISCARDED
    assert discarded.event_type == "changed.elsewhere", "applied to the fresh record"
    assert parts.store.replaces == 2


async def test_an_update_that_keeps_losing_gives_up(
    parts: Parts, make_report: ReportFactory
) -> None:
    opened = (await parts.service.receive(make_report())).record

    async def always_lose(record: object, expected_version: int) -> bool:
        return False

    parts.store.replace = always_lose  # type: ignore[method-assign]
    with pytest.raises(ConcurrentUpdateError):
        await parts.service.retry_now(opened.id, "admin-1")


async def test_admin_actions_on_an_unknown_record(parts: Parts) -> None:
    with pytest.raises(NotFoundError, match="no dead letter with id 'nope'"):
        await parts.service.retry_now("nope", "admin")
    with pytest.raises(NotFoundError):
        await parts.service.get("nope")


async def test_an_attempt_is_published_in_the_original_trace(
    parts: Parts, make_report: ReportFactory
) -> None:
    exporter = InMemorySpanExporter()
    runner = _runner(parts, exporter)
    record = (await parts.service.receive(make_report())).record
    assert await runner.due(10) == []
    parts.clock.advance(1)
    [due] = await runner.due(10)

    assert await runner.attempt(due) is RetryOutcome.PUBLISHED
    [sent] = parts.republisher.sent
    assert (sent.attempt, sent.headers["x-retry-count"], sent.headers["x-retry-group"]) == (
        1,
        "1",
        "notifier",
    )
    stored = parts.store.records[record.id]
    assert stored.status is Status.RETRIED
    assert stored.retry_count == 1
    assert parts.claims.claims[(record.id, 1)]["state"] == "published"
    [span] = exporter.get_finished_spans()
    assert span.name == "dlq.retry"
    assert span.parent is not None
    assert format(span.context.trace_id, "032x") == record.trace_id
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert dict(span.attributes or {}) == {
        "dlq.id": record.id,
        "dlq.retry_count": 1,
        "messaging.destination.name": "execution_events",
        "messaging.consumer.group.name": "notifier",
        "event.id": "e-1",
        "event.type": "execution.requested",
        "execution.id": "x-1",
        "dlq.retry.outcome": "published",
    }
    attempt = stored.attempt(1)
    assert attempt is not None
    assert attempt.trace_id == record.trace_id


async def test_a_claimed_attempt_is_left_to_its_holder(
    parts: Parts, make_report: ReportFactory
) -> None:
    runner = _runner(parts)
    record = (await parts.service.receive(make_report())).record
    parts.clock.advance(1)
    held = await parts.claims.claim(
        record.id, 1, "other", parts.clock(), parts.clock() + timedelta(seconds=60)
    )
    assert held.outcome is ClaimOutcome.ACQUIRED
    assert await runner.attempt(record) is RetryOutcome.SKIPPED
    assert parts.republisher.sent == []


async def test_an_attempt_published_before_is_not_published_again(
    parts: Parts, make_report: ReportFactory
) -> None:
    runner = _runner(parts)
    record = (await parts.service.receive(make_report())).record
    parts.clock.advance(1)
    # Another instance published attempt 1 and died before updating the record.
    await parts.claims.claim(record.id, 1, "dead", parts.clock(), parts.clock())
    publication = Publication(partition=3, offset=44, published_at=parts.clock())
    await parts.claims.published(record.id, 1, "dead", publication)

    assert await runner.attempt(record) is RetryOutcome.REPAIRED
    assert parts.republisher.sent == []
    stored = parts.store.records[record.id]
    assert stored.status is Status.RETRIED
    attempt = stored.attempt(1)
    assert attempt is not None
    assert (attempt.published_partition, attempt.published_offset) == (3, 44)


async def test_a_crashed_claim_is_taken_over_after_its_lease(
    parts: Parts, make_report: ReportFactory
) -> None:
    runner = _runner(parts)
    record = (await parts.service.receive(make_report())).record
    parts.clock.advance(1)
    lease = parts.clock() + timedelta(seconds=60)
    await parts.claims.claim(record.id, 1, "crashed", parts.clock(), lease)
    await parts.updater.update(
        record.id, lambda r: tr.begin_attempt(r, 1, "crashed", lease, parts.clock())
    )
    assert await runner.due(10) == []  # retrying, lease not over
    parts.clock.advance(61)
    [due] = await runner.due(10)
    assert due.status is Status.RETRYING
    assert await runner.attempt(due) is RetryOutcome.PUBLISHED
    assert parts.store.records[record.id].status is Status.RETRIED


async def test_a_refused_publish_releases_the_claim_and_tries_the_same_attempt_later(
    parts: Parts, make_report: ReportFactory
) -> None:
    runner = _runner(parts)
    record = (await parts.service.receive(make_report())).record
    parts.clock.advance(1)
    parts.republisher.fail_with = "Kafka did not acknowledge"
    assert await runner.attempt(record) is RetryOutcome.FAILED
    stored = parts.store.records[record.id]
    assert stored.status is Status.SCHEDULED
    assert stored.next_attempt == 1
    assert stored.next_attempt_at == parts.clock() + timedelta(seconds=5)
    assert parts.claims.claims[(record.id, 1)]["state"] == "released"

    parts.republisher.fail_with = None
    parts.clock.advance(5)
    [due] = await runner.due(10)
    assert await runner.attempt(due) is RetryOutcome.PUBLISHED


async def test_an_attempt_for_a_record_an_admin_discarded_is_dropped(
    parts: Parts, make_report: ReportFactory
) -> None:
    runner = _runner(parts)
    record = (await parts.service.receive(make_report())).record
    parts.clock.advance(1)
    [due] = await runner.due(10)
    await parts.service.discard(record.id, "stop", "admin-1")
    assert await runner.attempt(due) is RetryOutcome.SKIPPED
    assert parts.republisher.sent == []
    assert parts.claims.claims[(record.id, 1)]["state"] == "released"


async def test_the_scheduler_makes_due_attempts_and_stops(
    parts: Parts, make_report: ReportFactory
) -> None:
    runner = _runner(parts)
    for offset in range(3):
        await parts.service.receive(make_report(headers={"x-original-offset": str(offset)}))
    parts.clock.advance(1)
    scheduler = RetryScheduler(runner, poll_interval_s=0.01, batch_size=2, concurrency=2)
    task = asyncio.create_task(scheduler.run())

    async def all_sent() -> bool:
        return len(parts.republisher.sent) == 3

    await eventually(all_sent, timeout_s=5, interval_s=0.01, what="three retries")
    scheduler.stop()
    await asyncio.wait_for(task, timeout=5)
    assert scheduler.attempts == 3


async def test_the_scheduler_keeps_polling_while_the_store_is_down(parts: Parts) -> None:
    runner = _runner(parts)
    parts.store.down = True
    scheduler = RetryScheduler(runner, poll_interval_s=0.01, batch_size=5, concurrency=1)
    task = asyncio.create_task(scheduler.run())

    async def polled_again() -> bool:
        return parts.store.due_calls >= 3

    await eventually(polled_again, timeout_s=5, interval_s=0.01, what="three failing polls")
    assert not task.done()
    scheduler.stop()
    await asyncio.wait_for(task, timeout=5)


async def test_keyed_locks_serialise_one_key_and_are_dropped_after() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def hold(name: str) -> None:
        async with locks.hold("k"):
            order.append(f"{name}+")
            await asyncio.sleep(0.01)
            order.append(f"{name}-")

    await asyncio.gather(hold("a"), hold("b"))
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
    assert len(locks) == 0
