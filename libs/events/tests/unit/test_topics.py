"""ensure_topics against a fake admin client: creates only what is missing, tolerates races."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaConnectionError

from integr8scode_events.errors import BrokerUnavailableError
from integr8scode_events.kafka.topic_admin import ensure_topics
from integr8scode_events.topics import (
    ALL_TOPICS,
    DEAD_LETTER_QUEUE,
    EXECUTION_EVENTS,
    EXECUTION_REQUESTS,
    NOTIFICATION_EVENTS,
)

_DAY_MS = 24 * 60 * 60 * 1000
TOPIC_ALREADY_EXISTS = 36
INVALID_REPLICATION_FACTOR = 38


@dataclass
class CreateTopicsResponse:
    topic_errors: list[tuple[str, int, str | None]]


@dataclass
class FakeAdmin:
    existing: list[str] = field(default_factory=list)
    error_codes: dict[str, int] = field(default_factory=dict)
    list_error: Exception | None = None
    created: list[NewTopic] = field(default_factory=list)
    create_calls: int = 0

    async def list_topics(self) -> list[str]:
        if self.list_error is not None:
            raise self.list_error
        return list(self.existing)

    async def create_topics(self, new_topics: Sequence[NewTopic]) -> CreateTopicsResponse:
        self.create_calls += 1
        self.created.extend(new_topics)
        return CreateTopicsResponse(
            [(t.name, self.error_codes.get(t.name, 0), None) for t in new_topics]
        )


async def test_creates_every_topic_with_partitions_and_retention() -> None:
    admin = FakeAdmin()
    created = await ensure_topics(admin, replication_factor=3)

    assert created == [t.name for t in ALL_TOPICS]
    specs = {t.name: t for t in admin.created}
    assert {name: t.num_partitions for name, t in specs.items()} == {
        "execution_requests": 6,
        "execution_events": 6,
        "notification_events": 3,
        "dead_letter_queue": 3,
    }
    assert specs["execution_requests"].topic_configs == {"retention.ms": str(7 * _DAY_MS)}
    assert specs["dead_letter_queue"].topic_configs == {"retention.ms": str(30 * _DAY_MS)}
    assert {t.replication_factor for t in admin.created} == {3}


async def test_creates_only_the_missing_topics() -> None:
    admin = FakeAdmin(existing=[EXECUTION_REQUESTS.name, NOTIFICATION_EVENTS.name, "other"])
    created = await ensure_topics(admin)
    assert created == [EXECUTION_EVENTS.name, DEAD_LETTER_QUEUE.name]
    assert [t.name for t in admin.created] == created


async def test_nothing_missing_means_no_create_call() -> None:
    admin = FakeAdmin(existing=[t.name for t in ALL_TOPICS])
    assert await ensure_topics(admin) == []
    assert admin.create_calls == 0


async def test_only_the_requested_topics_are_considered() -> None:
    admin = FakeAdmin()
    assert await ensure_topics(admin, [DEAD_LETTER_QUEUE]) == [DEAD_LETTER_QUEUE.name]


async def test_topic_created_by_someone_else_meanwhile_is_fine() -> None:
    admin = FakeAdmin(error_codes={EXECUTION_EVENTS.name: TOPIC_ALREADY_EXISTS})
    created = await ensure_topics(admin)
    assert EXECUTION_EVENTS.name not in created
    assert len(created) == len(ALL_TOPICS) - 1


async def test_other_error_codes_raise() -> None:
    admin = FakeAdmin(error_codes={DEAD_LETTER_QUEUE.name: INVALID_REPLICATION_FACTOR})
    with pytest.raises(
        BrokerUnavailableError, match=r"dead_letter_queue.*InvalidReplicationFactor"
    ):
        await ensure_topics(admin)


async def test_kafka_errors_are_translated() -> None:
    admin = FakeAdmin(list_error=KafkaConnectionError("no broker"))
    with pytest.raises(BrokerUnavailableError, match="could not create topics") as caught:
        await ensure_topics(admin)
    assert isinstance(caught.value.__cause__, KafkaConnectionError)
