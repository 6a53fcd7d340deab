"""What one message on ``dead_letter_queue`` says: which message failed where, how, and which
retry it was. Read leniently: a dead letter is kept even when its headers are incomplete."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from integr8scode_dlq_processor.domain.payloads import PayloadEncoding, readable_payload
from integr8scode_dlq_processor.domain.records import ErrorInfo
from integr8scode_events import StoredTraceContext
from integr8scode_events import headers as h

_RECORD_ID = re.compile(r"^[0-9a-f]{32}$")
_MAX_ERROR_MESSAGE = 4000


def record_id(topic: str, partition: int | None, offset: int | None, group: str | None) -> str:
    """The id of the first failure of a message: the same (topic, partition, offset, group)
    always gives the same id, so a redelivered dead letter finds its record."""
    identity = "\x1f".join([topic, str(partition), str(offset), group or ""])
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _timestamp(value: str | None, fallback_ms: int) -> datetime:
    if value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return datetime.fromtimestamp(fallback_ms / 1000, tz=UTC)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class FailureReport:
    """One dead letter as it arrived."""

    dlq_partition: int
    dlq_offset: int
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    consumer_group: str | None
    error: ErrorInfo
    retry_count: int
    failed_at: datetime
    dead_letter_id: str | None
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, str]
    payload: Any
    payload_encoding: PayloadEncoding
    event_id: str | None
    event_type: str | None
    execution_id: str | None
    trace: StoredTraceContext  # the failed message's, as it travelled

    @classmethod
    def from_message(
        cls,
        *,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Mapping[str, str],
        timestamp_ms: int,
    ) -> FailureReport:
        payload, encoding = readable_payload(value)
        envelope = payload if encoding is PayloadEncoding.JSON and isinstance(payload, dict) else {}
        carried_id = headers.get(h.DEAD_LETTER_ID, "").strip().lower()
        retry_count = _int(headers.get(h.RETRY_COUNT))
        topic = headers.get(h.ORIGINAL_TOPIC) or None
        return cls(
            dlq_partition=partition,
            dlq_offset=offset,
            original_topic=topic,
            original_partition=_int(headers.get(h.ORIGINAL_PARTITION)),
            original_offset=_int(headers.get(h.ORIGINAL_OFFSET)),
            consumer_group=headers.get(h.CONSUMER_GROUP) or None,
            error=ErrorInfo(
                type=headers.get(h.ERROR_TYPE) or "unknown",
                message=(headers.get(h.ERROR_MESSAGE) or "")[:_MAX_ERROR_MESSAGE],
            ),
            retry_count=max(retry_count or 0, 0),
            failed_at=_timestamp(headers.get(h.FAILED_AT), timestamp_ms),
            dead_letter_id=carried_id if _RECORD_ID.match(carried_id) else None,
            key=key,
            value=value,
            headers=dict(headers),
            payload=payload,
            payload_encoding=encoding,
            event_id=_text(envelope.get("event_id")),
            event_type=_text(envelope.get("event_type")) or headers.get(h.EVENT_TYPE) or None,
            execution_id=_text(envelope.get("execution_id")),
            trace=StoredTraceContext.from_headers(headers),
        )

    @property
    def position(self) -> str:
        """Where this dead letter sits in ``dead_letter_queue``: applied once per record."""
        return f"{self.dlq_partition}:{self.dlq_offset}"

    @property
    def trace_id(self) -> str | None:
        return self.trace.trace_id

    def record_id(self) -> str:
        """The record this report belongs to: the id a retry carries, else the id of the
        failed message (or, without one, of the dead letter itself)."""
        if self.dead_letter_id is not None:
            return self.dead_letter_id
        if self.original_topic is None:
            return record_id("\x00dead-letter", self.dlq_partition, self.dlq_offset, None)
        return record_id(
            self.original_topic, self.original_partition, self.original_offset, self.consumer_group
        )
