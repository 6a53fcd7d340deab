"""The state machine of a dead-letter record as pure functions: record (+ fact) → new record.

Every function takes the record as stored and returns the record to store, or raises
``ConflictError`` (an admin action that does not fit) / ``StaleRecordError`` (a scheduler step
that no longer applies). They are written so that facts may arrive in either order: a retry can fail
and come back before the scheduler has written down that it published it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from integr8scode_dlq_processor.domain.errors import ConflictError, StaleRecordError
from integr8scode_dlq_processor.domain.policies import Action, RetryPolicy, Uniform
from integr8scode_dlq_processor.domain.records import (
    AdminAction,
    Attempt,
    Claim,
    DeadLetter,
    Header,
    Status,
)
from integr8scode_dlq_processor.domain.reports import FailureReport

NO_TOPIC = "not retryable: the dead letter has no x-original-topic header"
NO_GROUP = (
    "not retryable: the dead letter has no x-consumer-group header "
    "(a retry would reach every consumer group of the topic)"
)


def max_attempts_reason(record: DeadLetter) -> str:
    return f"max attempts ({record.max_attempts}) reached: {record.error.render()}"


def _failure_entry(record: DeadLetter | None, report: FailureReport) -> Attempt:
    number = report.retry_count
    known = record.attempt(number) if record is not None else None
    fields = {
        "error": report.error,
        "failed_at": report.failed_at,
        "failed_partition": report.original_partition,
        "failed_offset": report.original_offset,
    }
    if known is not None:
        return known.model_copy(update={**fields, "trace_id": known.trace_id or report.trace_id})
    return Attempt(attempt=number, at=report.failed_at, trace_id=report.trace_id, **fields)


def _decide(record: DeadLetter, failed_attempt: int, now: datetime, uniform: Uniform) -> DeadLetter:
    """After attempt ``failed_attempt`` failed: schedule the next one, or discard."""
    if failed_attempt >= record.max_attempts:
        return _discarded(record, max_attempts_reason(record), now)
    delay = record.policy.delay(failed_attempt + 1, uniform)
    return record.model_copy(
        update={
            "status": Status.SCHEDULED,
            "next_attempt_at": now + timedelta(seconds=delay),
            "claim": None,
        }
    )


def _discarded(record: DeadLetter, reason: str, now: datetime) -> DeadLetter:
    return record.model_copy(
        update={
            "status": Status.DISCARDED,
            "discard_reason": reason,
            "discarded_at": now,
            "next_attempt_at": None,
            "claim": None,
        }
    )


def open_record(
    report: FailureReport, policy: RetryPolicy, now: datetime, uniform: Uniform
) -> DeadLetter:
    """The record of a dead letter seen for the first time."""
    max_attempts = policy.max_attempts if policy.action is Action.RETRY else 0
    record = DeadLetter(
        id=report.record_id(),
        status=Status.SCHEDULED,
        topic=report.original_topic,
        partition=report.original_partition,
        offset=report.original_offset,
        consumer_group=report.consumer_group,
        key=report.key,
        value=report.value,
        headers=tuple(Header(name=k, value=v) for k, v in report.headers.items()),
        payload=report.payload,
        payload_encoding=report.payload_encoding,
        event_id=report.event_id,
        event_type=report.event_type,
        execution_id=report.execution_id,
        error=report.error,
        retry_count=report.retry_count,
        max_attempts=max_attempts,
        policy=policy,
        first_failed_at=report.failed_at,
        last_failed_at=report.failed_at,
        created_at=now,
        updated_at=now,
        attempts=(_failure_entry(None, report),),
        traceparent=report.trace.traceparent,
        tracestate=report.trace.tracestate,
        trace_id=report.trace_id,
        dlq_positions=(report.position,),
    )
    if report.original_topic is None:
        return _discarded(record, NO_TOPIC, now)
    if report.consumer_group is None:
        return _discarded(record, NO_GROUP, now)
    if policy.action is Action.DISCARD:
        return _discarded(
            record, f"discarded by policy {policy.rule}: {report.error.render()}", now
        )
    return _decide(record, report.retry_count, now, uniform)


def apply_failure(
    record: DeadLetter, report: FailureReport, now: datetime, uniform: Uniform
) -> DeadLetter | None:
    """A dead letter for an existing record (a retry failed again, or the same failure was
    dead-lettered twice); None when this very message was applied before (redelivery)."""
    if report.position in record.dlq_positions:
        return None
    failed = report.retry_count
    latest = failed >= record.retry_count
    updated = record.model_copy(
        update={
            "dlq_positions": (*record.dlq_positions, report.position),
            "attempts": record.with_attempt(_failure_entry(record, report)),
            "last_failed_at": max(record.last_failed_at, report.failed_at),
            "error": report.error if latest else record.error,
            "updated_at": now,
        }
    )
    if record.status is Status.DISCARDED or not latest:
        return updated  # parked by an admin or a policy, or a late report of an older attempt
    claim = record.claim
    if record.status is Status.RETRYING and claim is not None and claim.attempt > failed:
        return updated  # a newer attempt is already being published
    return _decide(updated.model_copy(update={"retry_count": failed}), failed, now, uniform)


def begin_attempt(
    record: DeadLetter, attempt: int, owner: str, lease_until: datetime, now: datetime
) -> DeadLetter:
    """The scheduler claimed ``attempt`` and is about to publish it."""
    if record.status not in (Status.SCHEDULED, Status.RETRYING) or record.next_attempt != attempt:
        raise StaleRecordError(f"{record.id}: attempt {attempt} is no longer due ({record.status})")
    return record.model_copy(
        update={
            "status": Status.RETRYING,
            "claim": Claim(attempt=attempt, owner=owner, lease_until=lease_until),
            "next_attempt_at": lease_until,
            "updated_at": now,
        }
    )


def attempt_published(
    record: DeadLetter,
    attempt: int,
    *,
    published_at: datetime,
    partition: int,
    offset: int,
    trace_id: str | None,
    now: datetime,
) -> DeadLetter:
    """The broker acknowledged ``attempt``. Recorded even when the record has moved on."""
    known = record.attempt(attempt)
    entry = (known or Attempt(attempt=attempt, at=published_at)).model_copy(
        update={
            "at": published_at,
            "trace_id": trace_id or (known.trace_id if known else None),
            "published_at": published_at,
            "published_partition": partition,
            "published_offset": offset,
        }
    )
    update: dict[str, object] = {
        "attempts": record.with_attempt(entry),
        "retry_count": max(record.retry_count, attempt),
        "updated_at": now,
    }
    pending = record.status in (Status.SCHEDULED, Status.RETRYING)
    if pending and record.next_attempt == attempt:
        update.update({"status": Status.RETRIED, "next_attempt_at": None, "claim": None})
    return record.model_copy(update=update)


def attempt_not_published(
    record: DeadLetter, attempt: int, error: str, retry_at: datetime, now: datetime
) -> DeadLetter:
    """The broker did not take ``attempt``: the same attempt is due again at ``retry_at`` (a
    broker outage is not the message's fault, so it costs no attempt)."""
    known = record.attempt(attempt)
    entry = (known or Attempt(attempt=attempt, at=now)).model_copy(
        update={
            "publish_errors": (known.publish_errors if known else 0) + 1,
            "last_publish_error": error,
        }
    )
    update: dict[str, object] = {"attempts": record.with_attempt(entry), "updated_at": now}
    if record.status is Status.RETRYING and record.next_attempt == attempt:
        update.update({"status": Status.SCHEDULED, "next_attempt_at": retry_at, "claim": None})
    return record.model_copy(update=update)


def retry_now(record: DeadLetter, by: str, now: datetime) -> DeadLetter:
    """Admin: make the next attempt due now; a record without attempts left gets one more."""
    if record.topic is None or record.consumer_group is None:
        raise ConflictError(f"dead letter {record.id} can't be retried: {record.discard_reason}")
    if record.status is Status.RETRYING:
        raise ConflictError(
            f"dead letter {record.id} is being retried right now (attempt {record.next_attempt})"
        )
    if record.status is Status.RETRIED:
        raise ConflictError(
            f"dead letter {record.id} was re-published (attempt {record.retry_count}) and has "
            "not failed again; if it does, it comes back here"
        )
    return record.model_copy(
        update={
            "status": Status.SCHEDULED,
            "next_attempt_at": now,
            "max_attempts": max(record.max_attempts, record.next_attempt),
            "discard_reason": None,
            "discarded_at": None,
            "updated_at": now,
            "admin_actions": (*record.admin_actions, AdminAction(at=now, action="retry", by=by)),
        }
    )


def discard(record: DeadLetter, reason: str, by: str, now: datetime) -> DeadLetter:
    """Admin: park the record; it is not retried again unless an admin asks."""
    if record.status is Status.DISCARDED:
        raise ConflictError(
            f"dead letter {record.id} is already discarded: {record.discard_reason}"
        )
    if record.status is Status.RETRYING:
        raise ConflictError(
            f"dead letter {record.id} is being retried right now (attempt "
            f"{record.next_attempt}); discard it once that is done"
        )
    action = AdminAction(at=now, action="discard", by=by, reason=reason)
    parked = _discarded(record, f"discarded by an admin: {reason}", now)
    return parked.model_copy(
        update={"updated_at": now, "admin_actions": (*record.admin_actions, action)}
    )
