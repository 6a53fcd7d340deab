"""Kafka header names (DESIGN.md §4) and conversions between Kafka's list form and a dict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

EVENT_TYPE = "event_type"
CORRELATION_ID = "correlation_id"
SERVICE = "service"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# Added when a message is dead-lettered.
ORIGINAL_TOPIC = "x-original-topic"
ORIGINAL_PARTITION = "x-original-partition"
ORIGINAL_OFFSET = "x-original-offset"
CONSUMER_GROUP = "x-consumer-group"
ERROR_TYPE = "x-error-type"
ERROR_MESSAGE = "x-error-message"
RETRY_COUNT = "x-retry-count"
FAILED_AT = "x-failed-at"
# The traceparent of the PRODUCER span that dead-lettered the message (the DLQ processor's
# ``dlq.consume`` links to it; the message's own traceparent stays the failed trace's).
DEAD_LETTERED_BY = "x-dead-lettered-by"
DEAD_LETTER_HEADERS = (
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    CONSUMER_GROUP,
    ERROR_TYPE,
    ERROR_MESSAGE,
    RETRY_COUNT,
    FAILED_AT,
    DEAD_LETTERED_BY,
)

# Added by the DLQ processor to a retried message. A message with RETRY_GROUP is handled only by
# the consumer group it names (the one that failed on it); every other group skips it. The
# dead-letter id survives a second dead-lettering (it is not one of DEAD_LETTER_HEADERS), so the
# processor updates the record it already has instead of opening a new one.
RETRY_GROUP = "x-retry-group"
DEAD_LETTER_ID = "x-dead-letter-id"

# Added to replayed messages.
REPLAY_SESSION = "x-replay-session"
REPLAYED_EVENT_ID = "x-replayed-event-id"
REPLAY_REPROCESS = "x-replay-reprocess"

KafkaHeaders = list[tuple[str, bytes]]


def to_dict(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Kafka's header list as a dict of text (the last value wins; undecodable bytes replaced)."""
    result: dict[str, str] = {}
    for name, value in headers or ():
        result[name] = (value or b"").decode("utf-8", errors="replace")
    return result


def to_kafka(headers: Mapping[str, str]) -> KafkaHeaders:
    """A dict of text as Kafka's header list."""
    return [(name, value.encode()) for name, value in headers.items()]


def for_another_group(headers: Mapping[str, str], group_id: str) -> bool:
    """A DLQ retry names the group that failed on it (``x-retry-group``); the other groups
    handled the message already and skip it."""
    target = headers.get(RETRY_GROUP)
    return bool(target) and target != group_id
