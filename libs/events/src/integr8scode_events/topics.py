"""The project's Kafka topics: names, partitions, retention; created idempotently at start-up."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from integr8scode_events.errors import BrokerUnavailableError
from integr8scode_events.settings import KafkaSettings

log = logging.getLogger(__name__)

_DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the platform expects it."""

    name: str
    partitions: int
    retention_ms: int
    description: str

    def new_topic(self, replication_factor: int) -> NewTopic:
        return NewTopic(
            self.name,
            num_partitions=self.partitions,
            replication_factor=replication_factor,
            topic_configs={"retention.ms": str(self.retention_ms)},
        )


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


async def ensure_topics(
    admin: AIOKafkaAdminClient,
    topics: Iterable[TopicSpec] = ALL_TOPICS,
    replication_factor: int = 1,
) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created."""
    wanted = list(topics)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics([t.new_topic(replication_factor) for t in missing])
    except KafkaError as exc:
        raise BrokerUnavailableError(f"could not create topics: {exc}") from exc
    names: list[str] = []
    for topic_error in response.topic_errors:
        name, code = topic_error[0], topic_error[1]
        if code == 0:
            names.append(name)
        elif for_code(code) is not TopicAlreadyExistsError:
            # Another instance may create it between our list and create: that is fine.
            raise BrokerUnavailableError(
                f"could not create topic {name}: {for_code(code).__name__}"
            )
    log.info("created topics %s", names)
    return names


async def create_missing_topics(
    settings: KafkaSettings, client_id: str, topics: Iterable[TopicSpec] = ALL_TOPICS
) -> list[str]:
    """At a service's start-up: connect an admin client, ``ensure_topics``, disconnect."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, client_id=f"{client_id}-admin"
    )
    try:
        await admin.start()
    except KafkaError as exc:
        await admin.close()
        raise BrokerUnavailableError(f"could not reach Kafka to create topics: {exc}") from exc
    try:
        return await ensure_topics(admin, topics)
    finally:
        await admin.close()
