"""One trace across the Kafka hop: parent → PRODUCER → kafka.consume → Mongo and HTTPX spans."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from opentelemetry.trace import SpanKind
from pymongo import AsyncMongoClient
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.kafka_support import running, sample_event
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_events import ExecutionRequested
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    HandlerRegistry,
    KafkaSettings,
    MessageContext,
)
from integr8scode_telemetry import TelemetrySettings, init_telemetry

STACK = local_stack()


def _telemetry(service: str, *, instrument: bool) -> Any:
    settings = TelemetrySettings(otlp_endpoint=STACK.otlp_grpc)
    return init_telemetry(
        settings, service, "it", set_global=False, instrument_libraries=instrument
    )


async def test_consumer_continues_the_producer_trace(
    kafka_settings: KafkaSettings,
    new_topic: Callable[[], Any],
) -> None:
    suffix = uuid.uuid4().hex[:6]
    producer_side = _telemetry(f"events-it-producer-{suffix}", instrument=False)
    consumer_side = _telemetry(f"events-it-consumer-{suffix}", instrument=True)
    topic = await new_topic()
    # PyMongo is instrumented through its monitoring hooks: only clients created afterwards
    # report commands, so this client is made after the consumer side's telemetry.
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(STACK.mongo_url)
    collection = mongo["integr8scode_test"][f"trace_{suffix}"]
    handled: list[str] = []

    async def handle(event: ExecutionRequested, ctx: MessageContext) -> None:
        await collection.insert_one({"event_id": str(event.event_id)})
        async with httpx.AsyncClient(base_url=STACK.jaeger_query) as http:
            (await http.get("/api/services")).raise_for_status()
        handled.append(str(event.event_id))

    registry = HandlerRegistry().on(ExecutionRequested, handle)
    try:
        async with EventPublisher(
            kafka_settings, "events-it", tracer_provider=producer_side.tracer_provider
        ) as publisher:
            runner = ConsumerRunner(
                settings=kafka_settings,
                group_id=f"it-trace-{suffix}",
                topics=[topic],
                publisher=publisher,
                handlers=registry,
                tracer_provider=consumer_side.tracer_provider,
            )
            event = sample_event()
            async with running(runner):
                tracer = producer_side.tracer_provider.get_tracer("it")
                with tracer.start_as_current_span("it.parent") as parent:
                    await publisher.publish(event, topic=topic)
                trace_id = format(parent.get_span_context().trace_id, "032x")

                async def done() -> bool:
                    return handled == [str(event.event_id)]

                await eventually(done, timeout_s=30, what="event handled")
    finally:
        producer_side.shutdown()
        consumer_side.shutdown()
        await collection.drop()
        await mongo.close()

    def complete(trace: JaegerTrace) -> bool:
        return len(trace.named("kafka.consume")) == 1 and len(trace.spans) >= 5

    trace = await wait_for_trace(STACK.jaeger_query, trace_id, until=complete)
    parent_span = trace.one("it.parent")
    publish = trace.one(f"publish {topic}")
    consume = trace.one("kafka.consume")
    assert trace.parent_of(publish) == parent_span
    assert trace.parent_of(consume) == publish
    assert publish.kind == SpanKind.PRODUCER.name.lower()
    assert consume.kind == SpanKind.CONSUMER.name.lower()
    assert publish.service == f"events-it-producer-{suffix}"
    assert consume.service == f"events-it-consumer-{suffix}"

    for span in (publish, consume):
        assert span.tag("messaging.system") == "kafka"
        assert span.tag("messaging.destination.name") == topic
        assert span.tag("event.id") == str(event.event_id)
        assert span.tag("event.type") == "execution.requested"
        assert span.tag("execution.id") == event.execution_id
    assert publish.tag("messaging.kafka.message.key") == event.execution_id
    assert consume.tag("messaging.destination.partition.id") == "0"
    assert consume.tag("messaging.kafka.offset") == 0
    assert consume.tag("messaging.consumer.group.name") == f"it-trace-{suffix}"

    children = trace.children_of(consume)
    mongo_spans = [s for s in children if s.tag("db.system.name") == "mongodb"]
    http_spans = [s for s in children if s.kind == "client" and s.name.startswith("GET")]
    assert mongo_spans, f"no Mongo span under kafka.consume: {trace.names()}"
    assert http_spans, f"no HTTPX span under kafka.consume: {trace.names()}"
    assert http_spans[0].tag("http.response.status_code") == 200
