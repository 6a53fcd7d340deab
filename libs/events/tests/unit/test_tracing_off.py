"""A consumer whose process records no spans still passes the message's trace context on: what
its handler publishes carries the inbound ``traceparent``, ``tracestate`` and ``baggage``
unchanged (nothing new was recorded, so the next hop's parent is the inbound span itself)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import baggage, trace
from tests.kafka_support import sample_event

from integr8scode_events import ExecutionRequested
from integr8scode_events import headers as h
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    HandlerRegistry,
    KafkaSettings,
    MessageContext,
)

SETTINGS = KafkaSettings(bootstrap_servers="127.0.0.1:1")
INBOUND = {
    h.TRACEPARENT: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    h.TRACESTATE: "vendor=upstream",
    "baggage": "tenant=internal",
}


class CapturingProducer:
    """Stands in for aiokafka: keeps what was sent, acknowledges at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    async def send(self, topic: str, **kwargs: Any) -> asyncio.Future[Any]:
        self.sent.append(h.to_dict(kwargs["headers"]))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        delivery.set_result(SimpleNamespace(partition=0, offset=len(self.sent)))
        return delivery


def _publisher(producer: CapturingProducer) -> EventPublisher:
    publisher = EventPublisher(SETTINGS, "unit", tracer_provider=trace.NoOpTracerProvider())
    publisher._producer = producer  # the fake stands in for aiokafka
    publisher._acked_recently_until = float("inf")
    return publisher


def _record(headers: dict[str, str]) -> SimpleNamespace:
    event = sample_event()
    return SimpleNamespace(
        topic="execution_requests",
        partition=0,
        offset=5,
        key=event.key,
        value=event.to_bytes(),
        headers=h.to_kafka(headers),
    )


async def _consume_and_publish(inbound: dict[str, str]) -> tuple[dict[str, str], MessageContext]:
    producer = CapturingProducer()
    publisher = _publisher(producer)
    seen: list[MessageContext] = []
    off = trace.NoOpTracerProvider()

    async def handle(event: ExecutionRequested, ctx: MessageContext) -> None:
        seen.append(ctx)
        # A handler's own span, as services start them, is as inert as the rest.
        with off.get_tracer("handler").start_as_current_span("saga.step"):
            assert baggage.get_baggage("tenant") == ("internal" if "baggage" in inbound else None)
            await publisher.publish(sample_event(f"next-{uuid.uuid4().hex[:6]}"))

    runner = ConsumerRunner(
        settings=SETTINGS,
        group_id="unit",
        topics=["execution_requests"],
        publisher=publisher,
        handlers=HandlerRegistry().on(ExecutionRequested, handle),
        tracer_provider=off,
    )
    await runner._handle(_record(inbound))
    assert runner.handled == 1
    [published] = producer.sent
    return published, seen[0]


async def test_the_published_message_carries_the_consumed_context_unchanged() -> None:
    published, ctx = await _consume_and_publish(INBOUND)
    assert published[h.TRACEPARENT] == INBOUND[h.TRACEPARENT]  # same trace id, same parent
    assert published[h.TRACESTATE] == INBOUND[h.TRACESTATE]
    assert published["baggage"] == INBOUND["baggage"]
    # The handler's span names the inbound context too (links made from it point right).
    assert ctx.span.get_span_context().trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert not ctx.span.is_recording()


@pytest.mark.parametrize("flags", ["00", "01"])
async def test_the_sampling_decision_travels_as_it_came(flags: str) -> None:
    inbound = {h.TRACEPARENT: INBOUND[h.TRACEPARENT][:-2] + flags}
    published, _ = await _consume_and_publish(inbound)
    assert published[h.TRACEPARENT] == inbound[h.TRACEPARENT]


async def test_a_message_without_context_publishes_none() -> None:
    published, ctx = await _consume_and_publish({})
    assert h.TRACEPARENT not in published
    assert "baggage" not in published
    assert not ctx.span.get_span_context().is_valid


async def test_the_context_does_not_outlive_the_message() -> None:
    await _consume_and_publish(INBOUND)
    assert not trace.get_current_span().get_span_context().is_valid
    assert baggage.get_all() == {}
