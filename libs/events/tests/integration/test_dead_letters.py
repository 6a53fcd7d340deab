"""Failing and garbage messages go to the dead-letter topic; the partition keeps flowing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from tests.kafka_support import read_all, running, sample_event
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_events import ExecutionRequested
from integr8scode_events import headers as h
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    HandlerRegistry,
    KafkaSettings,
    MessageContext,
    RetryPolicy,
)
from integr8scode_telemetry import TelemetrySettings, init_telemetry

STACK = local_stack()


class HandlerBrokeError(RuntimeError):
    pass


async def test_always_failing_handler_dead_letters_and_the_partition_moves_on(
    kafka_settings: KafkaSettings, new_topic: Callable[[], Any], publisher: EventPublisher
) -> None:
    topic, dlq = await new_topic(), await new_topic()
    failing = sample_event(execution_id="exec-shared")
    later = sample_event(execution_id="exec-shared")  # same key: same partition, after it
    attempts: list[int] = []
    handled: list[str] = []

    async def handle(event: ExecutionRequested, ctx: MessageContext) -> None:
        if event.event_id == failing.event_id:
            attempts.append(ctx.attempt)
            raise HandlerBrokeError("the handler always fails on this one")
        handled.append(str(event.event_id))

    group = f"it-dlq-{uuid.uuid4().hex[:6]}"
    runner = ConsumerRunner(
        settings=kafka_settings,
        group_id=group,
        topics=[topic],
        publisher=publisher,
        handlers=HandlerRegistry().on(ExecutionRequested, handle),
        retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01),
        dead_letter_topic=dlq,
    )
    telemetry = init_telemetry(
        TelemetrySettings(otlp_endpoint=STACK.otlp_grpc),
        "events-it-dlq",
        "0",
        set_global=False,
        instrument_libraries=False,
    )
    traced = EventPublisher(kafka_settings, "events-it", tracer_provider=telemetry.tracer_provider)
    async with traced, running(runner):
        with telemetry.tracer.start_as_current_span("it.dead-letter"):
            await traced.publish(failing, topic=topic)
            await traced.publish(later, topic=topic)

        async def later_handled() -> bool:
            return handled == [str(later.event_id)]

        await eventually(later_handled, timeout_s=30, what="the later message handled")

    telemetry.shutdown()
    assert attempts == [1, 2, 3]
    assert runner.dead_lettered == 1
    [record] = await read_all(dlq, expected=1)
    headers = h.to_dict(record.headers)
    original = await read_all(topic, expected=2)
    original_headers = h.to_dict(original[0].headers)
    assert record.value == original[0].value
    assert record.key == b"exec-shared"
    assert headers[h.TRACEPARENT] == original_headers[h.TRACEPARENT]
    assert headers[h.EVENT_TYPE] == "execution.requested"
    assert headers[h.ORIGINAL_TOPIC] == topic
    assert headers[h.ORIGINAL_PARTITION] == "0"
    assert headers[h.ORIGINAL_OFFSET] == "0"
    assert headers[h.CONSUMER_GROUP] == group
    assert headers[h.ERROR_TYPE].endswith("HandlerBrokeError")
    assert headers[h.ERROR_MESSAGE] == "the handler always fails on this one"
    assert headers[h.RETRY_COUNT] == "0"
    assert headers[h.FAILED_AT]


async def test_garbage_is_dead_lettered_at_once_without_stopping_the_consumer(
    kafka_settings: KafkaSettings, new_topic: Callable[[], Any], publisher: EventPublisher
) -> None:
    topic, dlq = await new_topic(), await new_topic()
    calls: list[str] = []

    async def handle(event: ExecutionRequested, ctx: MessageContext) -> None:
        calls.append(str(event.event_id))

    runner = ConsumerRunner(
        settings=kafka_settings,
        group_id=f"it-garbage-{uuid.uuid4().hex[:6]}",
        topics=[topic],
        publisher=publisher,
        handlers=HandlerRegistry().on(ExecutionRequested, handle),
        dead_letter_topic=dlq,
    )
    good = sample_event()
    raw = AIOKafkaProducer(bootstrap_servers=STACK.kafka_bootstrap)
    await raw.start()
    try:
        async with running(runner) as task:
            await raw.send_and_wait(topic, b"\x00not json{", headers=[("event_type", b"?")])
            await raw.send_and_wait(topic, b'{"event_type": "no.such.event"}')
            await publisher.publish(good, topic=topic)

            async def good_handled() -> bool:
                return calls == [str(good.event_id)]

            await eventually(good_handled, timeout_s=30, what="valid message after garbage")
            assert not task.done()
    finally:
        await raw.stop()
    records = await read_all(dlq, expected=2)
    error_types = [h.to_dict(r.headers)[h.ERROR_TYPE] for r in records]
    assert error_types[0].endswith("DecodeError")
    assert error_types[1].endswith("UnknownEventTypeError")
    assert records[0].value == b"\x00not json{"
    assert runner.dead_lettered == 2
