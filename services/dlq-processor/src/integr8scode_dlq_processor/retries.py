"""Making one retry attempt, exactly once across instances (as far as Kafka and Mongo allow).

For a due record and its next attempt ``n``:

1. **claim** ``record:n`` in ``dead_letter_attempts`` (unique insert, with a lease). Of any
   number of instances exactly one gets it; the others skip the record.
2. **begin**: the record becomes ``retrying`` (``next_attempt_at`` = the lease end, so a
   crashed claimant's record shows up as due again once the lease lapses). If the record moved
   on meanwhile (an admin discarded it), the claim is released and nothing is published.
3. **publish** the retry under span ``dlq.retry`` whose parent is the failed message's original
   context, so the retried handling joins the request's trace.
4. **confirm**: the claim becomes ``published`` (with partition/offset), then the record
   ``retried``. If the broker did not acknowledge, the claim is released and the same attempt
   is due again after ``publish_retry`` (a broker outage costs the message no attempt).

Crash windows: dying between 1 and 4 leaves a live claim; after its lease another instance
takes it over (one winner, via a unique takeover marker) and publishes. Dying after the broker's
ack but before the claim says ``published`` therefore publishes attempt ``n`` twice — Kafka and
Mongo share no transaction; consumers are idempotent by event id. Dying after the claim says
``published`` but before the record does is repaired without a second publish: the next claim
finds ``published`` and completes the record.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from integr8scode_dlq_processor.domain import transitions
from integr8scode_dlq_processor.domain.dead_letters import Clock, utc_now
from integr8scode_dlq_processor.domain.errors import (
    NotFoundError,
    RepublishFailedError,
    StaleRecordError,
)
from integr8scode_dlq_processor.domain.ports import (
    AttemptClaims,
    ClaimOutcome,
    Publication,
    Republisher,
)
from integr8scode_dlq_processor.domain.records import DeadLetter
from integr8scode_dlq_processor.domain.retry_message import build_retry
from integr8scode_dlq_processor.domain.updates import RecordUpdater
from integr8scode_events import tracing as t
from integr8scode_telemetry import untraced

log = logging.getLogger(__name__)

RETRY_SPAN = "dlq.retry"
DLQ_ID = "dlq.id"
DLQ_RETRY_COUNT = "dlq.retry_count"
DLQ_OUTCOME = "dlq.retry.outcome"


class RetryOutcome(enum.StrEnum):
    PUBLISHED = "published"
    REPAIRED = "repaired"  # published earlier; the record only caught up
    SKIPPED = "skipped"  # another instance has it, or the record moved on
    FAILED = "failed"  # the broker did not take it; due again later


def retry_span_attributes(record: DeadLetter, attempt: int) -> dict[str, Any]:
    found = {
        DLQ_ID: record.id,
        DLQ_RETRY_COUNT: attempt,
        t.MESSAGING_DESTINATION: record.topic,
        t.MESSAGING_GROUP: record.consumer_group,
        t.EVENT_ID: record.event_id,
        t.EVENT_TYPE: record.event_type,
        t.EXECUTION_ID: record.execution_id,
    }
    return {k: v for k, v in found.items() if v is not None}


def _trace_id(span: trace.Span) -> str | None:
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class RetryRunner:
    """Makes the next attempt of due records (see the module docstring)."""

    def __init__(
        self,
        updater: RecordUpdater,
        claims: AttemptClaims,
        republisher: Republisher,
        *,
        owner: str,
        claim_lease: timedelta,
        publish_retry: timedelta,
        tracer: trace.Tracer,
        meter: metrics.Meter | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._updater = updater
        self._store = updater.store
        self._claims = claims
        self._republisher = republisher
        self._owner = owner
        self._lease = claim_lease
        self._publish_retry = publish_retry
        self._tracer = tracer
        self._clock = clock
        self._attempts = (meter or metrics.get_meter(__name__)).create_counter(
            "dlq.retries",
            unit="{attempt}",
            description="Retry attempts this instance made, by original topic and outcome.",
        )

    async def due(self, limit: int) -> list[DeadLetter]:
        return await self._store.due(self._clock(), limit)

    async def attempt(self, record: DeadLetter) -> RetryOutcome:
        """Make the next attempt of ``record`` (as read from the due list)."""
        number = record.next_attempt
        now = self._clock()
        lease_until = now + self._lease
        # Every instance sees every due record; only the one that wins the claim opens a span
        # in the message's trace, so the losers leave no trace of their (cheap) attempt.
        with untraced():
            claim = await self._claims.claim(record.id, number, self._owner, now, lease_until)
        if claim.outcome is ClaimOutcome.BUSY:
            return RetryOutcome.SKIPPED
        with self._span(record, number) as span:
            if claim.outcome is ClaimOutcome.PUBLISHED:
                assert claim.publication is not None  # noqa: S101 - set with PUBLISHED
                await self._confirm(record.id, number, claim.publication)
                log.info("dead letter %s: attempt %d was published before", record.id, number)
                outcome = RetryOutcome.REPAIRED
            else:
                outcome = await self._publish(record, number, lease_until, span)
            span.set_attribute(DLQ_OUTCOME, outcome.value)
        self._attempts.add(
            1, {t.MESSAGING_DESTINATION: record.topic or "", DLQ_OUTCOME: outcome.value}
        )
        return outcome

    async def _publish(
        self, record: DeadLetter, number: int, lease_until: datetime, span: trace.Span
    ) -> RetryOutcome:
        try:
            started = await self._updater.update(
                record.id,
                lambda r: transitions.begin_attempt(
                    r, number, self._owner, lease_until, self._clock()
                ),
            )
        except (StaleRecordError, NotFoundError) as exc:
            await self._claims.release(record.id, number, self._owner)
            log.info("dead letter %s: attempt %d dropped: %s", record.id, number, exc.detail)
            return RetryOutcome.SKIPPED
        try:
            published = await self._republisher.republish(build_retry(started, number))
        except RepublishFailedError as exc:
            error = exc.detail
            span.set_status(Status(StatusCode.ERROR, error))
            await self._claims.release(record.id, number, self._owner)
            retry_at = self._clock() + self._publish_retry
            await self._updater.update(
                record.id,
                lambda r: transitions.attempt_not_published(
                    r, number, error, retry_at, self._clock()
                ),
            )
            log.warning(
                "dead letter %s: attempt %d not published (%s); again at %s",
                record.id,
                number,
                error,
                retry_at.isoformat(),
            )
            return RetryOutcome.FAILED
        publication = Publication(
            partition=published.partition,
            offset=published.offset,
            published_at=published.published_at,
            trace_id=_trace_id(span) or started.trace_id,
        )
        await self._claims.published(record.id, number, self._owner, publication)
        await self._confirm(record.id, number, publication)
        log.info(
            "dead letter %s: attempt %d published to %s[%d]@%d",
            record.id,
            number,
            started.topic,
            publication.partition,
            publication.offset,
        )
        return RetryOutcome.PUBLISHED

    @contextmanager
    def _span(self, record: DeadLetter, number: int) -> Iterator[trace.Span]:
        with self._tracer.start_as_current_span(
            RETRY_SPAN,
            context=record.trace.context(),
            kind=SpanKind.INTERNAL,
            attributes=retry_span_attributes(record, number),
        ) as span:
            yield span

    async def _confirm(self, record_id: str, number: int, publication: Publication) -> None:
        await self._updater.update(
            record_id,
            lambda r: transitions.attempt_published(
                r,
                number,
                published_at=publication.published_at,
                partition=publication.partition,
                offset=publication.offset,
                trace_id=publication.trace_id,
                now=self._clock(),
            ),
        )
