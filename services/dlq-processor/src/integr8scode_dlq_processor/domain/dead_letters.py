"""Receiving dead letters and what admins do with them, in terms of the ports only."""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from integr8scode_dlq_processor.domain import transitions
from integr8scode_dlq_processor.domain.errors import NotFoundError
from integr8scode_dlq_processor.domain.policies import PolicyBook, Uniform
from integr8scode_dlq_processor.domain.ports import CountRow, ListFilter, Page
from integr8scode_dlq_processor.domain.records import DeadLetter
from integr8scode_dlq_processor.domain.reports import FailureReport
from integr8scode_dlq_processor.domain.updates import RecordUpdater

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Intake(enum.Enum):
    CREATED = "created"  # a new record
    UPDATED = "updated"  # a retry failed again (or the same failure arrived twice)
    DUPLICATE = "duplicate"  # this dead letter was applied before (redelivered)


@dataclass(frozen=True)
class Received:
    record: DeadLetter
    intake: Intake


class DeadLetterService:
    """Records failures as they arrive and carries out admin actions; the retries themselves
    are the scheduler's (``retries.py``)."""

    def __init__(
        self,
        updater: RecordUpdater,
        policies: PolicyBook,
        *,
        clock: Clock = utc_now,
        uniform: Uniform = random.uniform,
    ) -> None:
        self._updater = updater
        self._store = updater.store
        self._policies = policies
        self._clock = clock
        self._uniform = uniform

    async def receive(self, report: FailureReport) -> Received:
        """Store a dead letter: open its record, or update the record it belongs to.
        Idempotent: the same dead letter (same ``dead_letter_queue`` position) applies once."""
        record_id = report.record_id()
        async with self._updater.locks.hold(record_id):
            if await self._store.get(record_id) is None:
                policy = self._policies.for_message(report.original_topic, report.event_type)
                record = transitions.open_record(report, policy, self._clock(), self._uniform)
                if await self._store.insert(record):
                    log.info(
                        "dead letter %s from %s (group %s): %s; %s",
                        record.id,
                        record.topic,
                        record.consumer_group,
                        record.error.render(),
                        record.discard_reason or f"retry at {record.next_attempt_at}",
                    )
                    return Received(record, Intake.CREATED)
                # Another instance opened it between our read and insert: update it instead.
            applied: list[bool] = []

            def change(current: DeadLetter) -> DeadLetter | None:
                updated = transitions.apply_failure(current, report, self._clock(), self._uniform)
                applied.append(updated is not None)
                return updated

            stored = await self._updater.update_locked(record_id, change)
        if not applied[-1]:
            return Received(stored, Intake.DUPLICATE)
        log.info(
            "dead letter %s failed again (attempt %d): %s; now %s",
            stored.id,
            report.retry_count,
            report.error.render(),
            stored.status,
        )
        return Received(stored, Intake.UPDATED)

    async def get(self, record_id: str) -> DeadLetter:
        record = await self._store.get(record_id)
        if record is None:
            raise NotFoundError(f"no dead letter with id '{record_id}'")
        return record

    async def page(self, where: ListFilter, limit: int, offset: int) -> Page:
        return await self._store.page(where, limit, offset)

    async def counts(self) -> list[CountRow]:
        return await self._store.counts()

    async def retry_now(self, record_id: str, by: str) -> DeadLetter:
        record = await self._updater.update(
            record_id, lambda r: transitions.retry_now(r, by, self._clock())
        )
        log.info("dead letter %s: retry now (asked by %s)", record_id, by)
        return record

    async def discard(self, record_id: str, reason: str, by: str) -> DeadLetter:
        record = await self._updater.update(
            record_id, lambda r: transitions.discard(r, reason, by, self._clock())
        )
        log.info("dead letter %s discarded by %s: %s", record_id, by, reason)
        return record
