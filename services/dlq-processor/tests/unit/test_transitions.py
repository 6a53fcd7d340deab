"""The record's state machine, one transition at a time (facts may arrive in either order)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from integr8scode_dlq_processor.domain import transitions as tr
from integr8scode_dlq_processor.domain.errors import ConflictError, StaleRecordError
from integr8scode_dlq_processor.domain.policies import Action, RetryPolicy
from integr8scode_dlq_processor.domain.records import DeadLetter, Status
from integr8scode_dlq_processor.domain.reports import FailureReport

ReportFactory = Callable[..., FailureReport]
PolicyFactory = Callable[..., RetryPolicy]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LEASE = T0 + timedelta(seconds=60)


def top(low: float, high: float) -> float:
    return high


@pytest.fixture
def opened(make_report: ReportFactory, make_policy: PolicyFactory) -> DeadLetter:
    return tr.open_record(make_report(), make_policy(), T0, top)


def _failure(
    make_report: ReportFactory, record: DeadLetter, attempt: int, msg: str
) -> FailureReport:
    return make_report(
        headers={
            "x-dead-letter-id": record.id,
            "x-retry-count": str(attempt),
            "x-error-message": msg,
            "x-original-offset": str(100 + attempt),
        }
    )


def _published(record: DeadLetter, attempt: int, at: datetime = T0) -> DeadLetter:
    started = tr.begin_attempt(record, attempt, "me", LEASE, at)
    return tr.attempt_published(
        started, attempt, published_at=at, partition=0, offset=attempt, trace_id="t" * 32, now=at
    )


def test_a_new_dead_letter_is_scheduled_after_the_first_backoff(opened: DeadLetter) -> None:
    assert opened.status is Status.SCHEDULED
    assert opened.next_attempt_at == T0 + timedelta(seconds=1)
    assert (opened.retry_count, opened.next_attempt, opened.max_attempts) == (0, 1, 3)
    assert opened.topic == "execution_events"
    assert (opened.partition, opened.offset, opened.consumer_group) == (2, 17, "notifier")
    assert opened.trace_id == "0af7651916cd43dd8448eb211c80319c"
    [original] = opened.attempts
    assert original.attempt == 0
    assert original.error is not None
    assert original.error.message == "boom"
    assert len(opened.dlq_positions) == 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"x-original-topic": None}, tr.NO_TOPIC),
        ({"x-consumer-group": None}, tr.NO_GROUP),
    ],
)
def test_a_dead_letter_that_cant_be_retried_is_parked(
    make_report: ReportFactory,
    make_policy: PolicyFactory,
    headers: dict[str, str | None],
    reason: str,
) -> None:
    record = tr.open_record(make_report(headers=headers), make_policy(), T0, top)
    assert record.status is Status.DISCARDED
    assert record.discard_reason == reason
    assert record.next_attempt_at is None


def test_a_discard_policy_parks_at_once(
    make_report: ReportFactory, make_policy: PolicyFactory
) -> None:
    rule = make_policy(rule="topic=execution_events", action=Action.DISCARD)
    record = tr.open_record(make_report(), rule, T0, top)
    assert record.status is Status.DISCARDED
    assert record.discard_reason == (
        "discarded by policy topic=execution_events: builtins.RuntimeError: boom"
    )
    assert record.max_attempts == 0


def test_each_failed_retry_schedules_the_next_until_the_last(
    make_report: ReportFactory, opened: DeadLetter
) -> None:
    record = opened
    for attempt, wait in ((1, 2.0), (2, 4.0)):
        record = _published(record, attempt)
        assert record.status is Status.RETRIED
        assert record.retry_count == attempt
        record = tr.apply_failure(
            record, _failure(make_report, record, attempt, f"e{attempt}"), T0, top
        ) or pytest.fail("applied")
        assert record.status is Status.SCHEDULED
        assert record.next_attempt_at == T0 + timedelta(seconds=wait)
    record = _published(record, 3)
    last = tr.apply_failure(record, _failure(make_report, record, 3, "e3"), T0, top)
    assert last is not None
    assert last.status is Status.DISCARDED
    assert last.discard_reason == "max attempts (3) reached: builtins.RuntimeError: e3"
    assert [a.attempt for a in last.attempts] == [0, 1, 2, 3]
    assert all(a.error is not None for a in last.attempts)
    assert last.attempts[2].published_offset == 2
    assert last.attempts[2].failed_offset == 102


def test_the_same_dead_letter_applies_once(make_report: ReportFactory, opened: DeadLetter) -> None:
    record = _published(opened, 1)
    failure = _failure(make_report, record, 1, "again")
    once = tr.apply_failure(record, failure, T0, top)
    assert once is not None
    assert tr.apply_failure(once, failure, T0, top) is None


def test_a_failure_that_arrives_before_the_publish_is_confirmed(
    make_report: ReportFactory, opened: DeadLetter
) -> None:
    started = tr.begin_attempt(opened, 1, "me", LEASE, T0)
    failed = tr.apply_failure(started, _failure(make_report, started, 1, "fast"), T0, top)
    assert failed is not None
    assert failed.status is Status.SCHEDULED
    assert failed.next_attempt == 2
    confirmed = tr.attempt_published(
        failed, 1, published_at=T0, partition=0, offset=9, trace_id=None, now=T0
    )
    assert confirmed.status is Status.SCHEDULED, "the later failure is not undone"
    entry = confirmed.attempt(1)
    assert entry is not None
    assert entry.published_offset == 9
    assert entry.error is not None


def test_a_late_report_of_an_older_attempt_changes_only_the_history(
    make_report: ReportFactory, opened: DeadLetter
) -> None:
    first = _published(opened, 1)
    failed = tr.apply_failure(first, _failure(make_report, first, 1, "e1"), T0, top)
    assert failed is not None
    record = _published(failed, 2)
    # Attempt 1 was dead-lettered a second time (another DLQ message), after attempt 2 went out.
    late = tr.apply_failure(record, _failure(make_report, record, 1, "late"), T0, top)
    assert late is not None
    assert late.status is Status.RETRIED
    assert late.retry_count == 2
    assert late.error == record.error
    assert len(late.dlq_positions) == len(record.dlq_positions) + 1


def test_a_discarded_record_stays_discarded_when_a_failure_comes_back(
    make_report: ReportFactory, opened: DeadLetter
) -> None:
    record = tr.discard(_published(opened, 1), "enough", "admin-1", T0)
    after = tr.apply_failure(record, _failure(make_report, record, 1, "x"), T0, top)
    assert after is not None
    assert after.status is Status.DISCARDED
    assert after.discard_reason == "discarded by an admin: enough"


def test_begin_refuses_an_attempt_that_is_no_longer_due(opened: DeadLetter) -> None:
    with pytest.raises(StaleRecordError):
        tr.begin_attempt(opened, 2, "me", LEASE, T0)
    with pytest.raises(StaleRecordError):
        tr.begin_attempt(tr.discard(opened, "no", "a", T0), 1, "me", LEASE, T0)
    started = tr.begin_attempt(opened, 1, "me", LEASE, T0)
    assert started.status is Status.RETRYING
    assert started.next_attempt_at == LEASE
    taken_over = tr.begin_attempt(started, 1, "other", LEASE, T0)
    assert taken_over.claim is not None
    assert taken_over.claim.owner == "other"


def test_a_publish_the_broker_refused_is_the_same_attempt_later(opened: DeadLetter) -> None:
    started = tr.begin_attempt(opened, 1, "me", LEASE, T0)
    again = T0 + timedelta(seconds=5)
    back = tr.attempt_not_published(started, 1, "broker down", again, T0)
    assert back.status is Status.SCHEDULED
    assert (back.next_attempt, back.next_attempt_at, back.retry_count) == (1, again, 0)
    entry = back.attempt(1)
    assert entry is not None
    assert (entry.publish_errors, entry.last_publish_error) == (1, "broker down")


def test_admin_retry_makes_it_due_now_and_adds_an_attempt_when_none_are_left(
    make_report: ReportFactory, opened: DeadLetter
) -> None:
    record = opened
    for attempt in (1, 2, 3):
        record = _published(record, attempt)
        record = tr.apply_failure(
            record, _failure(make_report, record, attempt, "x"), T0, top
        ) or pytest.fail("applied")
    assert record.status is Status.DISCARDED
    later = T0 + timedelta(hours=1)
    retried = tr.retry_now(record, "admin-1", later)
    assert retried.status is Status.SCHEDULED
    assert (retried.next_attempt_at, retried.next_attempt, retried.max_attempts) == (later, 4, 4)
    assert retried.discard_reason is None
    assert [(a.action, a.by) for a in retried.admin_actions] == [("retry", "admin-1")]
    scheduled = tr.retry_now(opened, "admin-1", later)
    assert (scheduled.next_attempt_at, scheduled.max_attempts) == (later, 3)


def test_admin_actions_that_do_not_fit_the_state_conflict(
    make_report: ReportFactory, make_policy: PolicyFactory, opened: DeadLetter
) -> None:
    started = tr.begin_attempt(opened, 1, "me", LEASE, T0)
    with pytest.raises(ConflictError, match="being retried right now"):
        tr.retry_now(started, "a", T0)
    with pytest.raises(ConflictError, match="being retried right now"):
        tr.discard(started, "x", "a", T0)
    with pytest.raises(ConflictError, match="has not failed again"):
        tr.retry_now(_published(opened, 1), "a", T0)
    discarded = tr.discard(opened, "x", "a", T0)
    with pytest.raises(ConflictError, match="already discarded"):
        tr.discard(discarded, "y", "a", T0)
    orphan = tr.open_record(make_report(headers={"x-consumer-group": None}), make_policy(), T0, top)
    with pytest.raises(ConflictError, match="can't be retried"):
        tr.retry_now(orphan, "a", T0)
