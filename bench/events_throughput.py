"""Publish + consume N messages: libs/events (tracing on / off) against bare aiokafka.

    uv run python bench/events_throughput.py --messages 20000 --concurrency 256

Needs the local stack (`make up`). Prints messages/s for publishing, consuming and the whole
round, and the ratios to bare aiokafka. Goal (not tested): libs/events with tracing >= 80% of
bare aiokafka. Each scenario uses its own topic and consumer group, and the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from integr8scode_events import ExecutionRequested
from integr8scode_events.envelope import ProducerInfo
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    HandlerRegistry,
    KafkaSettings,
    MessageContext,
)
from integr8scode_events.payloads import ExecutionLimits, ExecutionRequestedPayload
from integr8scode_telemetry import TelemetryHandle, TelemetrySettings, init_telemetry

BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
OTLP = f"http://127.0.0.1:{os.environ.get('OTLP_GRPC_PORT', '4317')}"


@dataclass
class Result:
    name: str
    messages: int
    publish_s: float
    consume_s: float

    @property
    def total_rate(self) -> float:
        return self.messages / (self.publish_s + self.consume_s)


def _event(i: int) -> ExecutionRequested:
    return ExecutionRequested(
        producer=ProducerInfo(service="bench", version="0"),
        correlation_id=f"bench-{i}",
        execution_id=f"exec-{i % 512}",
        user_id="bench",
        payload=ExecutionRequestedPayload(
            script="print(sum(range(10)))",
            language="python",
            language_version="3.11",
            limits=ExecutionLimits(timeout_s=5, memory_mb=128),
        ),
    )


async def _topic() -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 3, 1)])
    finally:
        await admin.close()
    return name


async def _bounded(n: int, concurrency: int, send: Callable[[int], Awaitable[Any]]) -> float:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            await send(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - start


async def bare(n: int, concurrency: int) -> Result:
    topic = await _topic()
    values = [_event(i) for i in range(n)]
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:

        async def send(i: int) -> None:
            e = values[i]
            await producer.send_and_wait(
                topic,
                e.to_bytes(),
                key=e.key,
                headers=[("event_type", e.event_type.encode())],
            )

        publish_s = await _bounded(n, concurrency, send)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    start = time.perf_counter()
    seen = 0
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=100)
            for records in batch.values():
                for record in records:
                    ExecutionRequested.model_validate_json(record.value)
                    seen += 1
            if batch:
                await consumer.commit()
        consume_s = time.perf_counter() - start
    finally:
        await consumer.stop()
    return Result("bare aiokafka", n, publish_s, consume_s)


async def platform(
    n: int, concurrency: int, telemetry: TelemetryHandle | None, name: str
) -> Result:
    topic = await _topic()
    settings = KafkaSettings(bootstrap_servers=BOOTSTRAP)
    provider = telemetry.tracer_provider if telemetry else None
    events = [_event(i) for i in range(n)]
    done = asyncio.Event()
    seen = 0

    async def handle(event: ExecutionRequested, ctx: MessageContext) -> None:
        nonlocal seen
        seen += 1
        if seen >= n:
            done.set()

    async with EventPublisher(settings, "bench", tracer_provider=provider) as publisher:

        async def send(i: int) -> None:
            await publisher.publish(events[i], topic=topic)

        publish_s = await _bounded(n, concurrency, send)
        runner = ConsumerRunner(
            settings=settings,
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
            topics=[topic],
            publisher=publisher,
            handlers=HandlerRegistry().on(ExecutionRequested, handle),
            tracer_provider=provider,
        )
        start = time.perf_counter()
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(done.wait(), timeout=600)
        consume_s = time.perf_counter() - start
        runner.stop()
        await task
    return Result(name, n, publish_s, consume_s)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()
    n, c = args.messages, args.concurrency

    results = [await bare(n, c)]
    results.append(await platform(n, c, None, "libs/events, tracing off"))
    tracing = init_telemetry(
        TelemetrySettings(otlp_endpoint=OTLP),
        "bench-events",
        "0",
        set_global=False,
        instrument_libraries=False,
    )
    try:
        results.append(await platform(n, c, tracing, "libs/events, tracing on"))
    finally:
        tracing.shutdown()
    # Spans recorded and sampled but exported nowhere: the SDK's own cost, without OTLP.
    local_only = init_telemetry(
        TelemetrySettings(otlp_endpoint=None),
        "bench-events",
        "0",
        set_global=False,
        instrument_libraries=False,
    )
    try:
        results.append(await platform(n, c, local_only, "libs/events, tracing, no export"))
    finally:
        local_only.shutdown()

    base = results[0]
    print(f"{n} messages, concurrency {c}, bootstrap {BOOTSTRAP}")
    print(f"{'scenario':28} {'publish/s':>10} {'consume/s':>10} {'round/s':>10} {'vs bare':>8}")
    for r in results:
        print(
            f"{r.name:28} {n / r.publish_s:10.0f} {n / r.consume_s:10.0f} "
            f"{r.total_rate:10.0f} {r.total_rate / base.total_rate:8.0%}"
        )
    on, off = results[2], results[1]
    print(f"tracing cost (round/s on vs off): {on.total_rate / off.total_rate:.0%} of untraced")


if __name__ == "__main__":
    asyncio.run(main())
