"""Routing a message that could not be handled to the dead-letter topic (DESIGN.md §4)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from integr8scode_events import headers as h
from integr8scode_events.errors import PublishError
from integr8scode_events.kafka.publisher import EventPublisher

log = logging.getLogger(__name__)

_MAX_ERROR_MESSAGE = 2000


def failure_headers(
    record: Any, headers: Mapping[str, str], group_id: str, exc: BaseException
) -> dict[str, str]:
    """The original headers (``traceparent`` kept: the dead letter belongs to the trace that
    failed) with the ``x-*`` failure headers replaced by this failure's. A retry's
    ``x-retry-group`` is dropped: the dead letter is addressed to the DLQ processor, not to a
    group (its ``x-dead-letter-id`` stays, so the processor finds its record)."""
    failure = {
        name: value
        for name, value in headers.items()
        if name not in h.DEAD_LETTER_HEADERS and name != h.RETRY_GROUP
    }
    failure.update(
        {
            h.ORIGINAL_TOPIC: record.topic,
            h.ORIGINAL_PARTITION: str(record.partition),
            h.ORIGINAL_OFFSET: str(record.offset),
            h.CONSUMER_GROUP: group_id,
            h.ERROR_TYPE: f"{type(exc).__module__}.{type(exc).__qualname__}",
            h.ERROR_MESSAGE: str(exc)[:_MAX_ERROR_MESSAGE],
            h.RETRY_COUNT: headers.get(h.RETRY_COUNT, "0"),
            h.FAILED_AT: datetime.now(UTC).isoformat(),
        }
    )
    return failure


async def dead_letter(
    publisher: EventPublisher,
    topic: str,
    record: Any,
    failure: Mapping[str, str],
    backoff: Callable[[int], float],
) -> None:
    """Publish ``record`` to ``topic`` with ``failure`` headers, retrying until the broker takes
    it: until then the message is neither committed nor dropped."""
    attempt = 0
    while True:
        attempt += 1
        try:
            await publisher.publish_raw(
                topic,
                record.value,
                record.key,
                failure,
                producer_context_header=h.DEAD_LETTERED_BY,
            )
        except PublishError as publish_error:
            delay = backoff(min(attempt, 10))
            log.warning("dead-letter publish failed (%s); retrying in %.2fs", publish_error, delay)
            await asyncio.sleep(delay)
        else:
            return
