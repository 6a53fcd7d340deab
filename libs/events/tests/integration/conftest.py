"""Fixtures for the events library against the real local stack."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient
from tests.stack import local_stack

from integr8scode_events.kafka import EventPublisher, KafkaSettings

STACK = local_stack()


@pytest.fixture
def kafka_settings() -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=STACK.kafka_bootstrap)


@pytest.fixture
async def new_topic() -> AsyncIterator[Callable[[], Any]]:
    """Factory of fresh single-partition topics, deleted after the test."""
    admin = AIOKafkaAdminClient(bootstrap_servers=STACK.kafka_bootstrap)
    await admin.start()
    created: list[str] = []

    async def make(partitions: int = 1) -> str:
        name = f"it-{uuid.uuid4().hex[:10]}"
        await admin.create_topics([NewTopic(name, partitions, 1)])
        created.append(name)
        return name

    try:
        yield make
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics(created)
        await admin.close()


@pytest.fixture
async def mongo() -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000
    )
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[EventPublisher]:
    async with EventPublisher(kafka_settings, "events-it") as pub:
        yield pub
