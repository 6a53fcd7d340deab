"""Creating the project's topics (``topics.py``) at a service's start-up, idempotently."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from integr8scode_events.errors import BrokerUnavailableError
from integr8scode_events.kafka.settings import KafkaSettings
from integr8scode_events.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)


def new_topic(spec: TopicSpec, replication_factor: int) -> NewTopic:
    """The admin request that creates ``spec``'s topic with its partitions and retention."""
    return NewTopic(
        spec.name,
        num_partitions=spec.partitions,
        replication_factor=replication_factor,
        topic_configs={"retention.ms": str(spec.retention_ms)},
    )


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
        response = await admin.create_topics([new_topic(t, replication_factor) for t in missing])
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
