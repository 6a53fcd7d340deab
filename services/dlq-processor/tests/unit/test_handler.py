"""The dead_letter_queue handler: a message becomes a record; the span says which."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integr8scode_dlq_processor.domain.records import Status
from integr8scode_dlq_processor.handlers.dead_letters import DeadLetterHandler
from integr8scode_events.kafka import MessageContext, RawMessage

if TYPE_CHECKING:  # conftest is not importable at run time (--import-mode=importlib)
    from conftest import Parts

HEADERS = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "x-original-topic": "execution_events",
    "x-original-partition": "0",
    "x-original-offset": "5",
    "x-consumer-group": "notifier",
    "x-error-type": "builtins.RuntimeError",
    "x-error-message": "boom",
    "x-retry-count": "0",
}


async def test_a_dead_letter_is_stored_and_described_on_the_span(parts: Parts) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    woken: list[bool] = []
    handler = DeadLetterHandler(parts.service, on_scheduled=lambda: woken.append(True))
    message = RawMessage(
        topic="dead_letter_queue",
        partition=1,
        offset=9,
        key=b"x-1",
        value=b'{"event_id": "e-1", "event_type": "execution.completed", "execution_id": "x-1"}',
        headers=HEADERS,
        timestamp_ms=1_700_000_000_000,
    )
    for _ in range(2):  # the second time: a redelivery
        with provider.get_tracer("t").start_as_current_span("dlq.consume") as span:
            ctx = MessageContext(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                headers=message.headers,
                group_id="dlq-processor",
                attempt=1,
                span=span,
            )
            await handler(message, ctx)

    [record] = parts.store.records.values()
    assert record.status is Status.SCHEDULED
    assert record.dlq_positions == ("1:9",)
    assert woken == [True], "a redelivery wakes nobody"
    first, again = (dict(s.attributes or {}) for s in exporter.get_finished_spans())
    assert first["dlq.id"] == record.id
    assert first["dlq.intake"] == "created"
    assert first["dlq.status"] == "scheduled"
    assert first["dlq.original.topic"] == "execution_events"
    assert first["dlq.original.consumer_group"] == "notifier"
    assert (first["event.id"], first["event.type"], first["execution.id"]) == (
        "e-1",
        "execution.completed",
        "x-1",
    )
    assert again["dlq.intake"] == "duplicate"
