"""Helpers for tests that drive real Kafka consumers (events library and services)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer

from integr8scode_events.envelope import ProducerInfo
from integr8scode_events.events import ExecutionRequested
from integr8scode_events.kafka import ConsumerRunner
from integr8scode_events.payloads import ExecutionLimits, ExecutionRequestedPayload
from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()


def sample_event(execution_id: str | None = None, **overrides: Any) -> ExecutionRequested:
    return ExecutionRequested(
        producer=ProducerInfo(service="events-it", version="0"),
        correlation_id=overrides.pop("correlation_id", f"corr-{uuid.uuid4().hex[:8]}"),
        execution_id=execution_id or f"exec-{uuid.uuid4().hex[:8]}",
        user_id="user-1",
        payload=ExecutionRequestedPayload(
            script="print(1)",
            language="python",
            language_version="3.11",
            limits=ExecutionLimits(timeout_s=5, memory_mb=128),
        ),
        **overrides,
    )


@contextlib.asynccontextmanager
async def running(runner: ConsumerRunner) -> AsyncIterator[asyncio.Task[None]]:
    """Run a consumer in the background until the block ends; fail loudly if it crashed."""
    task = asyncio.create_task(runner.run())
    try:
        await eventually(
            lambda: _assigned_or_crashed(runner, task), timeout_s=30, what="partitions assigned"
        )
        yield task
    finally:
        runner.stop()
        await asyncio.wait_for(task, timeout=30)


async def _assigned_or_crashed(runner: ConsumerRunner, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # raises the consumer's error
        raise AssertionError("consumer stopped before partitions were assigned")
    return runner.assigned.is_set()


async def read_all(topic: str, expected: int, timeout_s: float = 30) -> list[Any]:
    """Read ``expected`` records of ``topic`` from the beginning (no group)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=STACK.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    try:

        async def enough() -> bool:
            batch = await consumer.getmany(timeout_ms=300)
            for part in batch.values():
                records.extend(part)
            return len(records) >= expected

        await eventually(enough, timeout_s=timeout_s, what=f"{expected} records on {topic}")
    finally:
        await consumer.stop()
    return records
