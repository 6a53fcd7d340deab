"""What a forwarded message (dead letter, retry, replay) says of itself and of its sender:
the ``service`` header names the sender, its PRODUCER span names the event, and a dead letter
carries the span that routed it so ``dlq.consume`` can link to it."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.kafka_support import sample_event

from integr8scode_events import headers as h
from integr8scode_events import tracing as t
from integr8scode_events.kafka import EventPublisher, KafkaSettings
from integr8scode_events.trace_context import StoredTraceContext


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, topic: str, **message: Any) -> asyncio.Future[Any]:
        self.sent.append({"topic": topic, **message})
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        delivery.set_result(type("Meta", (), {"partition": 0, "offset": len(self.sent)})())
        return delivery


def _publisher(service: str) -> tuple[EventPublisher, RecordingProducer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    publisher = EventPublisher(
        KafkaSettings(bootstrap_servers="kafka-0.internal:9092,kafka-1.internal:9092"),
        service,
        tracer_provider=provider,
    )
    producer = RecordingProducer()
    publisher._producer = producer  # the recorder stands in for aiokafka
    publisher._acked_recently_until = float("inf")
    return publisher, producer, exporter


def test_broker_attributes_split_host_and_port() -> None:
    assert t.broker_attributes("kafka-0:9092,kafka-1:9092") == {
        "server.address": "kafka-0",
        "server.port": 9092,
    }
    assert t.broker_attributes("[::1]:9094") == {"server.address": "::1", "server.port": 9094}
    assert t.broker_attributes("kafka") == {"server.address": "kafka"}


async def test_a_forwarded_message_names_its_sender_and_its_event() -> None:
    event = sample_event()
    publisher, producer, exporter = _publisher("dlq-processor")
    original = {h.EVENT_TYPE: event.event_type, h.SERVICE: "execution-coordinator"}

    await publisher.publish_raw("execution_requests", event.to_bytes(), event.key, original)

    headers = h.to_dict(producer.sent[0]["headers"])
    assert headers[h.SERVICE] == "dlq-processor"
    [span] = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["event.id"] == attributes["messaging.message.id"] == str(event.event_id)
    assert attributes["event.type"] == event.event_type
    assert attributes["execution.id"] == event.execution_id
    assert attributes["server.address"] == "kafka-0.internal"
    assert attributes["server.port"] == 9092
    assert attributes["messaging.client.id"] == "integr8scode-dlq-processor"


async def test_bytes_that_are_no_event_are_named_by_their_headers() -> None:
    publisher, _, exporter = _publisher("notifier")
    await publisher.publish_raw("dead_letter_queue", b"\xff not json", None, {h.EVENT_TYPE: "x"})
    [span] = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["event.type"] == "x"
    assert "event.id" not in attributes


async def test_the_producer_span_is_written_under_the_asked_header() -> None:
    event = sample_event()
    publisher, producer, exporter = _publisher("notifier")
    failed_trace = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"

    await publisher.publish_raw(
        "dead_letter_queue",
        event.to_bytes(),
        event.key,
        {h.TRACEPARENT: failed_trace},
        producer_context_header=h.DEAD_LETTERED_BY,
    )

    headers = h.to_dict(producer.sent[0]["headers"])
    assert headers[h.TRACEPARENT] == failed_trace  # still the trace that failed
    [span] = exporter.get_finished_spans()
    by = StoredTraceContext(headers[h.DEAD_LETTERED_BY]).span_context
    assert by is not None
    assert (by.trace_id, by.span_id) == (span.context.trace_id, span.context.span_id)
