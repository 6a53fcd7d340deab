"""With ``partition_concurrency`` a slow message holds up only its own partition."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tests.kafka_support import running
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    KafkaSettings,
    MessageContext,
    RawMessage,
)

STACK = local_stack()


async def test_a_slow_message_holds_up_only_its_partition(
    kafka_settings: KafkaSettings, new_topic: Callable[..., Any], publisher: EventPublisher
) -> None:
    topic = await new_topic(2)
    release, slow_started = asyncio.Event(), asyncio.Event()
    handled: list[tuple[int, bytes]] = []

    async def handle(message: RawMessage, ctx: MessageContext) -> None:
        if message.value == b"slow":
            slow_started.set()
            await release.wait()
        handled.append((message.partition, message.value or b""))

    group = f"it-partitions-{uuid.uuid4().hex[:6]}"
    runner = ConsumerRunner(
        settings=kafka_settings,
        group_id=group,
        topics=[topic],
        publisher=publisher,
        raw_handler=handle,
        partition_concurrency=True,
    )
    producer = AIOKafkaProducer(bootstrap_servers=STACK.kafka_bootstrap)
    await producer.start()
    try:
        async with running(runner):
            for value in (b"slow", b"a1"):
                await producer.send_and_wait(topic, value, partition=0)

            async def busy_with_slow() -> bool:
                return slow_started.is_set()

            await eventually(busy_with_slow, timeout_s=30, what="partition 0 busy")
            for value in (b"b1", b"b2"):
                await producer.send_and_wait(topic, value, partition=1)

            async def other_partition_done() -> bool:
                return [v for _, v in handled] == [b"b1", b"b2"]

            # Partition 1 goes on while partition 0 waits for its slow message.
            await eventually(other_partition_done, timeout_s=30, what="partition 1 handled")
            release.set()

            async def all_done() -> bool:
                return len(handled) == 4

            await eventually(all_done, timeout_s=30, what="partition 0 handled")
    finally:
        await producer.stop()

    assert [v for p, v in handled if p == 0] == [b"slow", b"a1"]  # order kept per partition
    committed = AIOKafkaConsumer(bootstrap_servers=STACK.kafka_bootstrap, group_id=group)
    await committed.start()
    try:
        offsets = [await committed.committed(TopicPartition(topic, p)) for p in (0, 1)]
    finally:
        await committed.stop()
    assert offsets == [2, 2]
