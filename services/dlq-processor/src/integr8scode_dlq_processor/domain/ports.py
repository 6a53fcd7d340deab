"""What the domain needs from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from integr8scode_dlq_processor.domain.records import DeadLetter, Status
from integr8scode_dlq_processor.domain.retry_message import RetryMessage


@dataclass(frozen=True)
class ListFilter:
    status: Status | None = None
    topic: str | None = None
    event_type: str | None = None
    consumer_group: str | None = None
    execution_id: str | None = None


@dataclass(frozen=True)
class Page:
    items: Sequence[DeadLetter]
    total: int


@dataclass(frozen=True)
class CountRow:
    """How many records of one (topic, consumer group) are in one status."""

    topic: str | None
    consumer_group: str | None
    status: Status
    count: int


class DeadLetterStore(Protocol):
    """Collection ``dead_letters``, written only by this service. Writes are by ``_id``, with
    optimistic concurrency on ``version``."""

    async def ensure_indexes(self) -> None: ...

    async def insert(self, record: DeadLetter) -> bool:
        """Store a new record; False when one with its id exists already."""
        ...

    async def get(self, record_id: str) -> DeadLetter | None: ...

    async def replace(self, record: DeadLetter, expected_version: int) -> bool:
        """Write ``record`` if the stored one still has ``expected_version``; False if not."""
        ...

    async def due(self, now: datetime, limit: int) -> list[DeadLetter]:
        """Records to act on: ``scheduled`` ones that are due and ``retrying`` ones whose claim
        lapsed (both have ``next_attempt_at <= now``), oldest due first."""
        ...

    async def page(self, where: ListFilter, limit: int, offset: int) -> Page:
        """Records matching ``where``, newest first."""
        ...

    async def counts(self) -> list[CountRow]: ...


@dataclass(frozen=True)
class Publication:
    """Where a retry went, and in which trace."""

    partition: int
    offset: int
    published_at: datetime
    trace_id: str | None = None


class ClaimOutcome(enum.Enum):
    ACQUIRED = "acquired"  # ours to publish
    PUBLISHED = "published"  # somebody published it already (see ``publication``)
    BUSY = "busy"  # another instance holds a live claim


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    publication: Publication | None = field(default=None)


class AttemptClaims(Protocol):
    """Collection ``dead_letter_attempts``: the decision "who publishes attempt n of record r"
    is a unique insert of ``r:n``, made once across every instance."""

    async def ensure_indexes(self) -> None: ...

    async def claim(
        self, record_id: str, attempt: int, owner: str, now: datetime, lease_until: datetime
    ) -> ClaimResult:
        """Claim an attempt; a claim whose lease lapsed (or that was released) is taken over
        by exactly one claimant."""
        ...

    async def published(
        self, record_id: str, attempt: int, owner: str, publication: Publication
    ) -> None: ...

    async def release(self, record_id: str, attempt: int, owner: str) -> None:
        """Give the attempt back without publishing it (it may be claimed again at once)."""
        ...


class Republisher(Protocol):
    async def republish(self, message: RetryMessage) -> Publication:
        """Publish a retry in the failed message's trace; ``RepublishFailedError`` without an
        ack."""
        ...
