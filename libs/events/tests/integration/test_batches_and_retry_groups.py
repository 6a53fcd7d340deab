"""Batch mode (the archiver's), DLQ retries addressed to one group, and producer-span links."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.kafka_support import read_all, running, sample_event
from tests.polling import eventually

from integr8scode_events import ExecutionRequested
from integr8scode_events import headers as h
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    HandlerRegistry,
    KafkaSettings,
    MessageContext,
    RawMessage,
    RetryPolicy,
)
from integr8scode_events.trace_context import StoredTraceContext


def _traced() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_batch_handler_gets_the_batch_in_one_span_linked_to_each_producer(
    kafka_settings: KafkaSettings, new_topic: Callable[..., Any]
) -> None:
    topic = await new_topic(2)
    provider, exporter = _traced()
    publisher = EventPublisher(kafka_settings, "events-it", tracer_provider=provider)
    received: list[RawMessage] = []

    async def archive(batch: Sequence[RawMessage]) -> None:
        received.extend(batch)

    runner = ConsumerRunner(
        settings=kafka_settings,
        group_id=f"it-batch-{uuid.uuid4().hex[:6]}",
        topics=[topic],
        publisher=publisher,
        batch_handler=archive,
        span_name="it.archive",
        tracer_provider=provider,
    )
    events = [sample_event() for _ in range(5)]
    async with publisher, running(runner):
        for event in events:
            await publisher.publish(event, topic=topic)
        await eventually(lambda: _at_least(received, 5), timeout_s=30, what="5 archived")

    assert sorted(m.headers[h.EVENT_TYPE] for m in received) == ["execution.requested"] * 5
    producers = {
        span.context.span_id for span in _named(exporter.get_finished_spans(), f"publish {topic}")
    }
    batches = _named(exporter.get_finished_spans(), "it.archive")
    assert batches, "no batch span"
    counts = [(span.attributes or {}).get("messaging.batch.message_count") for span in batches]
    assert sum(c for c in counts if isinstance(c, int)) == 5
    assert all(
        (span.attributes or {}).get("messaging.destination.name") == topic for span in batches
    )
    consumes = _named(exporter.get_finished_spans(), "kafka.consume")
    # Each message's trace has its consumer, under its producer span: a batch of one is that
    # consumer; a bigger batch is a root of its own, linked to each producer, with a
    # kafka.consume span in each message's trace linked back to it.
    for batch in batches:
        if (batch.attributes or {}).get("messaging.batch.message_count") == 1:
            assert batch.parent is not None
            assert batch.parent.span_id in producers
            assert not batch.links
        else:
            assert batch.parent is None
            linked = {link.context.span_id for link in batch.links}
            assert linked <= producers
            mine = [
                c for c in consumes if batch.context.span_id in {x.context.span_id for x in c.links}
            ]
            assert sorted(c.parent.span_id for c in mine if c.parent) == sorted(linked)
    single = {b.parent.span_id for b in batches if b.parent}
    linked_all = {link.context.span_id for b in batches for link in b.links}
    assert single | linked_all == producers
    assert not single & linked_all


async def _at_least(items: list[Any], n: int) -> bool:
    return len(items) >= n


async def test_failing_batch_is_dead_lettered_message_by_message(
    kafka_settings: KafkaSettings, new_topic: Callable[..., Any], publisher: EventPublisher
) -> None:
    topic, dlq = await new_topic(), await new_topic()
    attempts: list[int] = []

    async def broken(batch: Sequence[RawMessage]) -> None:
        attempts.append(len(batch))
        raise RuntimeError("store is down")

    runner = ConsumerRunner(
        settings=kafka_settings,
        group_id=f"it-batch-dlq-{uuid.uuid4().hex[:6]}",
        topics=[topic],
        publisher=publisher,
        batch_handler=broken,
        retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01),
        dead_letter_topic=dlq,
    )
    events = [sample_event(execution_id="exec-batch") for _ in range(3)]
    for event in events:
        await publisher.publish(event, topic=topic)
    async with running(runner):
        records = await read_all(dlq, expected=3)
    assert sorted(record.value for record in records) == sorted(e.to_bytes() for e in events)
    assert {h.to_dict(r.headers)[h.CONSUMER_GROUP] for r in records} == {runner.group_id}
    assert len(attempts) >= 2


async def test_a_fetch_hold_gathers_a_burst_and_still_delivers_a_lone_message(
    kafka_settings: KafkaSettings, new_topic: Callable[..., Any]
) -> None:
    """The archiver's fetch hold (a minimum far above what arrives): a burst still comes in
    whole, and a message that arrives alone is handed over once the hold's wait runs out."""
    topic = await new_topic()
    publisher = EventPublisher(kafka_settings, "events-it")
    batches: list[int] = []
    received: list[RawMessage] = []

    async def archive(batch: Sequence[RawMessage]) -> None:
        batches.append(len(batch))
        received.extend(batch)

    runner = ConsumerRunner(
        settings=kafka_settings,
        group_id=f"it-hold-{uuid.uuid4().hex[:6]}",
        topics=[topic],
        publisher=publisher,
        batch_handler=archive,
        fetch_min_bytes=10 * 1024 * 1024,
        fetch_max_wait_ms=300,
    )
    async with publisher, running(runner):
        for event in [sample_event() for _ in range(20)]:
            await publisher.publish(event, topic=topic)
        await eventually(lambda: _at_least(received, 20), timeout_s=30, what="the burst")
        await publisher.publish(sample_event(), topic=topic)
        await eventually(lambda: _at_least(received, 21), timeout_s=30, what="the lone one")
    assert sum(batches) == 21
    assert len({(m.partition, m.offset) for m in received}) == 21


async def test_a_retry_for_one_group_is_skipped_by_the_others(
    kafka_settings: KafkaSettings, new_topic: Callable[..., Any], publisher: EventPublisher
) -> None:
    topic = await new_topic()
    seen: dict[str, list[str]] = {"failed": [], "other": []}

    def handler(name: str) -> Any:
        async def handle(event: ExecutionRequested, ctx: MessageContext) -> None:
            seen[name].append(ctx.headers.get(h.RETRY_COUNT, "0"))

        return handle

    failed = ConsumerRunner(
        settings=kafka_settings,
        group_id=f"it-failed-{uuid.uuid4().hex[:6]}",
        topics=[topic],
        publisher=publisher,
        handlers=HandlerRegistry().on(ExecutionRequested, handler("failed")),
    )
    other = ConsumerRunner(
        settings=kafka_settings,
        group_id=f"it-other-{uuid.uuid4().hex[:6]}",
        topics=[topic],
        publisher=publisher,
        handlers=HandlerRegistry().on(ExecutionRequested, handler("other")),
    )
    event = sample_event()
    marker = sample_event()  # published after the retry: once "other" has it, it saw the retry
    async with running(failed), running(other):
        await publisher.publish(
            event, topic=topic, extra_headers={h.RETRY_GROUP: failed.group_id, h.RETRY_COUNT: "1"}
        )
        await publisher.publish(marker, topic=topic)
        await eventually(
            lambda: _at_least(seen["failed"], 2), timeout_s=30, what="both handled by the target"
        )
        await eventually(lambda: _at_least(seen["other"], 1), timeout_s=30, what="marker seen")
    assert seen["failed"] == ["1", "0"]
    assert seen["other"] == ["0"]


async def test_publish_raw_links_and_reinjects(
    kafka_settings: KafkaSettings, new_topic: Callable[..., Any]
) -> None:
    topic = await new_topic()
    provider, exporter = _traced()
    original = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    origin = StoredTraceContext(original).span_context
    assert origin is not None
    async with EventPublisher(kafka_settings, "events-it", tracer_provider=provider) as pub:
        await pub.publish_raw(
            topic,
            b"{}",
            b"k",
            {h.TRACEPARENT: original, h.EVENT_TYPE: "x"},
            reinject_context=True,
            links=[trace.Link(origin, {"replay.original_event_id": "e1"})],
        )
    [record] = await read_all(topic, expected=1)
    [span] = _named(exporter.get_finished_spans(), f"publish {topic}")
    assert [link.context.trace_id for link in span.links] == [origin.trace_id]
    sent = StoredTraceContext.from_headers(h.to_dict(record.headers)).span_context
    assert sent is not None
    assert (sent.trace_id, sent.span_id) == (span.context.trace_id, span.context.span_id)
    assert sent.trace_id != origin.trace_id
