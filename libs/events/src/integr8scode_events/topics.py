"""The project's Kafka topics: names, partitions, retention; and where a message landed in one.

The contract only: creating them at start-up is ``integr8scode_events.kafka.topic_admin``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

_DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the platform expects it."""

    name: str
    partitions: int
    retention_ms: int
    description: str


EXECUTION_REQUESTS = TopicSpec(
    "execution_requests", 6, 7 * _DAY_MS, "execution.requested, execution.cancel_requested"
)
EXECUTION_EVENTS = TopicSpec(
    "execution_events", 6, 7 * _DAY_MS, "execution lifecycle: started and the terminal events"
)
NOTIFICATION_EVENTS = TopicSpec(
    "notification_events", 3, 7 * _DAY_MS, "notification.sent, notification.failed"
)
DEAD_LETTER_QUEUE = TopicSpec(
    "dead_letter_queue", 3, 30 * _DAY_MS, "messages a consumer could not handle, with x-* headers"
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    EXECUTION_REQUESTS,
    EXECUTION_EVENTS,
    NOTIFICATION_EVENTS,
    DEAD_LETTER_QUEUE,
)
DOMAIN_TOPICS: tuple[TopicSpec, ...] = (EXECUTION_REQUESTS, EXECUTION_EVENTS, NOTIFICATION_EVENTS)


@dataclass(frozen=True)
class PublishedRecord:
    """Where the broker stored a message."""

    topic: str
    partition: int
    offset: int
