"""The message a retry re-publishes: the original key and value to the original topic, with the
original headers minus the failure headers, plus the retry's own."""

from __future__ import annotations

from dataclasses import dataclass

from integr8scode_dlq_processor.domain.records import DeadLetter
from integr8scode_events import StoredTraceContext
from integr8scode_events import headers as h

# Replaced on every retry: the failure headers describe one failure, and these three are
# rewritten below. traceparent/tracestate are replaced when published (the retry's own span).
_DROPPED = frozenset({*h.DEAD_LETTER_HEADERS, h.RETRY_GROUP, h.DEAD_LETTER_ID})


@dataclass(frozen=True)
class RetryMessage:
    """Everything the republisher needs, including the trace context to continue."""

    dead_letter_id: str
    attempt: int
    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    consumer_group: str
    trace: StoredTraceContext
    event_id: str | None
    event_type: str | None
    execution_id: str | None


def retry_headers(record: DeadLetter, attempt: int) -> dict[str, str]:
    """Original headers without the failure headers, plus ``x-retry-count`` (this attempt),
    ``x-dead-letter-id`` (so a new failure updates this record) and ``x-retry-group`` (only the
    group that failed handles it; the others have handled the original already)."""
    if record.consumer_group is None:
        raise ValueError(f"dead letter {record.id} names no consumer group; it can't be retried")
    headers = {name: value for name, value in record.header_map().items() if name not in _DROPPED}
    headers[h.RETRY_COUNT] = str(attempt)
    headers[h.DEAD_LETTER_ID] = record.id
    headers[h.RETRY_GROUP] = record.consumer_group
    return headers


def build_retry(record: DeadLetter, attempt: int) -> RetryMessage:
    if record.topic is None or record.consumer_group is None:
        raise ValueError(f"dead letter {record.id} has no original topic or group to retry to")
    return RetryMessage(
        dead_letter_id=record.id,
        attempt=attempt,
        topic=record.topic,
        key=record.key,
        value=record.value,
        headers=retry_headers(record, attempt),
        consumer_group=record.consumer_group,
        trace=record.trace,
        event_id=record.event_id,
        event_type=record.event_type,
        execution_id=record.execution_id,
    )
