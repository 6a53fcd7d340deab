"""What the admin API shows of a record. Credential-like headers and payload fields are masked;
the exact bytes (kept for the retry) are never shown."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from integr8scode_dlq_processor.domain.payloads import (
    PayloadEncoding,
    mask_headers,
    mask_secrets,
    readable_key,
)
from integr8scode_dlq_processor.domain.policies import RetryPolicy
from integr8scode_dlq_processor.domain.ports import CountRow
from integr8scode_dlq_processor.domain.records import (
    AdminAction,
    Attempt,
    DeadLetter,
    ErrorInfo,
    Status,
)


class DeadLetterSummary(BaseModel):
    id: str
    status: Status
    topic: str | None = Field(description="Topic the message failed on (and is retried to)")
    partition: int | None
    offset: int | None
    consumer_group: str | None = Field(description="The group that failed; retries go to it")
    event_id: str | None
    event_type: str | None
    execution_id: str | None
    error: ErrorInfo = Field(description="The latest failure")
    retry_count: int = Field(description="Retries published so far")
    max_attempts: int
    next_attempt_at: datetime | None
    discard_reason: str | None
    first_failed_at: datetime
    last_failed_at: datetime
    created_at: datetime
    updated_at: datetime
    trace_id: str | None = Field(description="The original request's trace (Jaeger)")

    @classmethod
    def of(cls, record: DeadLetter) -> DeadLetterSummary:
        return cls(**_summary_fields(record))


def _summary_fields(record: DeadLetter) -> dict[str, Any]:
    return {name: getattr(record, name) for name in DeadLetterSummary.model_fields}


class DeadLetterDetail(DeadLetterSummary):
    key: str | None = Field(description="Message key as text (base64: prefix if not UTF-8)")
    headers: dict[str, str] = Field(description="Headers as received (credentials masked)")
    payload: Any = Field(description="Parsed JSON, text or base64, per payload_encoding")
    payload_encoding: PayloadEncoding
    policy: RetryPolicy = Field(description="The retry policy the record was opened with")
    attempts: list[Attempt] = Field(description="Attempt 0 is the original failure")
    discarded_at: datetime | None
    traceparent: str | None
    tracestate: str | None
    admin_actions: list[AdminAction]
    dlq_positions: list[str] = Field(
        description="dead_letter_queue partition:offset of each dead letter applied"
    )

    @classmethod
    def of(cls, record: DeadLetter) -> DeadLetterDetail:
        payload = record.payload
        if record.payload_encoding is PayloadEncoding.JSON:
            payload = mask_secrets(payload)
        return cls(
            **_summary_fields(record),
            key=readable_key(record.key),
            headers=mask_headers(record.header_map()),
            payload=payload,
            payload_encoding=record.payload_encoding,
            policy=record.policy,
            attempts=list(record.attempts),
            discarded_at=record.discarded_at,
            traceparent=record.traceparent,
            tracestate=record.tracestate,
            admin_actions=list(record.admin_actions),
            dlq_positions=list(record.dlq_positions),
        )


class DeadLetterPage(BaseModel):
    items: list[DeadLetterSummary]
    total: int = Field(description="Records matching the filters")
    limit: int
    offset: int


class DiscardRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="Why, for the record")


class Breakdown(BaseModel):
    total: int = 0
    by_status: dict[Status, int] = Field(default_factory=dict)

    def add(self, status: Status, count: int) -> None:
        self.total += count
        self.by_status[status] = self.by_status.get(status, 0) + count


class Stats(BaseModel):
    total: int
    by_status: dict[Status, int]
    by_topic: dict[str, Breakdown]
    by_consumer_group: dict[str, Breakdown]

    @classmethod
    def of(cls, rows: Iterable[CountRow]) -> Stats:
        overall = Breakdown()
        topics: defaultdict[str, Breakdown] = defaultdict(Breakdown)
        groups: defaultdict[str, Breakdown] = defaultdict(Breakdown)
        for row in rows:
            overall.add(row.status, row.count)
            topics[row.topic or "(none)"].add(row.status, row.count)
            groups[row.consumer_group or "(none)"].add(row.status, row.count)
        return cls(
            total=overall.total,
            by_status={s: overall.by_status.get(s, 0) for s in Status},
            by_topic=dict(sorted(topics.items())),
            by_consumer_group=dict(sorted(groups.items())),
        )
