"""A dead-letter record: one failed message of one consumer group, its retries and its fate.

State machine (``status``), documented in the README with the same names:

                      ┌──────────── the retry failed again, attempts left ─────────────┐
                      ▼                                                                 │
    new dead letter ─► scheduled ─(due, attempt claimed)─► retrying ─(broker ack)─► retried
          │            ▲                                     │                          │
          │            └──(broker did not ack: same attempt later)                      │
          │                                                                             │
          └─(discard policy, not retryable, no attempts left)─► discarded ◄─(the last attempt
                                                                             failed again)
    admin: retry now   scheduled | discarded → scheduled (due now; one more attempt if none left)
           discard     scheduled | retried   → discarded

``retried`` means "re-published; no failure has come back since": a success is silent (nobody
reports it), so a record stays ``retried`` unless that attempt is dead-lettered again.
``retrying`` refuses both admin actions (an attempt is being published right now).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from integr8scode_dlq_processor.domain.payloads import PayloadEncoding
from integr8scode_dlq_processor.domain.policies import RetryPolicy
from integr8scode_events import StoredTraceContext


class Status(enum.StrEnum):
    SCHEDULED = "scheduled"  # waits for next_attempt_at
    RETRYING = "retrying"  # an instance claimed the next attempt and is publishing it
    RETRIED = "retried"  # the attempt was published; no failure came back (yet)
    DISCARDED = "discarded"  # parked: no more retries unless an admin asks


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    message: str

    def render(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


class Attempt(BaseModel):
    """Attempt 0 is the original failure; attempt ``n`` the ``n``-th re-publication."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    at: datetime = Field(description="When it was published (attempt 0: when it failed)")
    trace_id: str | None = None
    published_at: datetime | None = None
    published_partition: int | None = None
    published_offset: int | None = None
    publish_errors: int = 0
    last_publish_error: str | None = None
    error: ErrorInfo | None = Field(default=None, description="How this attempt failed")
    failed_at: datetime | None = None
    failed_partition: int | None = None
    failed_offset: int | None = None


class Claim(BaseModel):
    """Who is publishing which attempt, until when (mirrors ``dead_letter_attempts``)."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    owner: str
    lease_until: datetime


class AdminAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    action: str
    by: str
    reason: str | None = None


class Header(BaseModel):
    """Headers are kept as a list of pairs: header names may hold characters Mongo refuses in
    field names (``.``, a leading ``$``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str


class DeadLetter(BaseModel):
    """The stored record (collection ``dead_letters``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    version: int = 0
    status: Status

    # Where the first failure happened; later failures of retries are in ``attempts``.
    topic: str | None
    partition: int | None
    offset: int | None
    consumer_group: str | None

    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    payload: Any = None
    payload_encoding: PayloadEncoding

    event_id: str | None = None
    event_type: str | None = None
    execution_id: str | None = None

    error: ErrorInfo = Field(description="The latest failure")
    retry_count: int = Field(description="Retries published so far (= last attempt number)")
    max_attempts: int
    policy: RetryPolicy

    first_failed_at: datetime
    last_failed_at: datetime
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = Field(
        default=None,
        description="scheduled: when the next attempt is due; retrying: when its claim lapses",
    )
    claim: Claim | None = None
    attempts: tuple[Attempt, ...] = ()
    discard_reason: str | None = None
    discarded_at: datetime | None = None

    # The failed message's trace context as stored (and shown); read it back through ``trace``.
    traceparent: str | None = None
    tracestate: str | None = None
    trace_id: str | None = None

    dlq_positions: tuple[str, ...] = Field(
        default=(), description="dead_letter_queue partition:offset of every message applied"
    )
    admin_actions: tuple[AdminAction, ...] = ()

    @property
    def trace(self) -> StoredTraceContext:
        """The failed message's trace context, which every retry continues."""
        return StoredTraceContext(self.traceparent, self.tracestate)

    @property
    def next_attempt(self) -> int:
        return self.retry_count + 1

    def header_map(self) -> dict[str, str]:
        return {h.name: h.value for h in self.headers}

    def attempt(self, number: int) -> Attempt | None:
        return next((a for a in self.attempts if a.attempt == number), None)

    def with_attempt(self, entry: Attempt) -> tuple[Attempt, ...]:
        """The history with ``entry`` added or replacing the entry of the same number."""
        kept = [a for a in self.attempts if a.attempt != entry.attempt]
        return tuple(sorted([*kept, entry], key=lambda a: a.attempt))
