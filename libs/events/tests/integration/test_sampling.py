"""Sampling across the Kafka hop: tracing off exports nothing; parent decisions are honoured."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import TraceFlags
from tests.jaeger import jaeger_services, wait_for_trace
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


def _provider(service: str, **settings: Any) -> Any:
    return init_telemetry(
        TelemetrySettings(otlp_endpoint=STACK.otlp_grpc, **settings),
        service,
        "it",
        set_global=False,
        instrument_libraries=False,
    )


async def _round_trip(
    kafka_settings: KafkaSettings, topic: str, producer_side: Any, consumer_side: Any
) -> tuple[MessageContext, str]:
    seen: list[MessageContext] = []

    async def handle(event: ExecutionRequested, ctx: MessageContext) -> None:
        seen.append(ctx)

    async with EventPublisher(
        kafka_settings, "events-it", tracer_provider=producer_side.tracer_provider
    ) as publisher:
        runner = ConsumerRunner(
            settings=kafka_settings,
            group_id=f"it-sampling-{uuid.uuid4().hex[:6]}",
            topics=[topic],
            publisher=publisher,
            handlers=HandlerRegistry().on(ExecutionRequested, handle),
            tracer_provider=consumer_side.tracer_provider,
        )
        async with running(runner):
            with producer_side.tracer_provider.get_tracer("it").start_as_current_span(
                "it.root"
            ) as root:
                await publisher.publish(sample_event(), topic=topic)

            async def handled() -> bool:
                return len(seen) == 1

            await eventually(handled, timeout_s=30, what="message handled")
    return seen[0], format(root.get_span_context().trace_id, "032x")


async def test_tracing_off_exports_nothing(
    kafka_settings: KafkaSettings, new_topic: Callable[[], Any]
) -> None:
    suffix = uuid.uuid4().hex[:6]
    topic = await new_topic()
    off_ratio = _provider(f"it-ratio0-{suffix}", sampler_ratio=0.0)
    off_sdk = _provider(f"it-disabled-{suffix}", sdk_disabled=True)
    marker = _provider(f"it-marker-{suffix}")
    try:
        ctx, _ = await _round_trip(kafka_settings, topic, off_ratio, off_sdk)
        assert not ctx.span.get_span_context().trace_flags & TraceFlags.SAMPLED
        # A trace sent after them through the same collector proves the pipeline has drained.
        with marker.tracer_provider.get_tracer("it").start_as_current_span("it.marker") as span:
            pass
        marker_id = format(span.get_span_context().trace_id, "032x")
    finally:
        for handle in (off_ratio, off_sdk, marker):
            handle.shutdown()
    await wait_for_trace(STACK.jaeger_query, marker_id)
    services = await jaeger_services(STACK.jaeger_query)
    assert f"it-marker-{suffix}" in services
    assert f"it-ratio0-{suffix}" not in services
    assert f"it-disabled-{suffix}" not in services


async def test_consumer_follows_an_unsampled_parent(
    kafka_settings: KafkaSettings, new_topic: Callable[[], Any]
) -> None:
    topic = await new_topic()
    producer_side = _provider("it-producer", sampler_ratio=1e-12)  # roots almost never sampled
    consumer_side = _provider("it-consumer", sampler_ratio=1.0)  # would sample its own roots
    try:
        ctx, _ = await _round_trip(kafka_settings, topic, producer_side, consumer_side)
    finally:
        producer_side.shutdown()
        consumer_side.shutdown()
    assert not ctx.span.get_span_context().trace_flags & TraceFlags.SAMPLED


async def test_consumer_follows_a_sampled_parent(
    kafka_settings: KafkaSettings, new_topic: Callable[[], Any]
) -> None:
    topic = await new_topic()
    producer_side = _provider("it-producer", sampler_ratio=1.0)
    consumer_side = _provider("it-consumer", sampler_ratio=1e-12)  # alone it would drop roots
    try:
        ctx, trace_id = await _round_trip(kafka_settings, topic, producer_side, consumer_side)
    finally:
        producer_side.shutdown()
        consumer_side.shutdown()
    assert ctx.span.get_span_context().trace_flags & TraceFlags.SAMPLED
    assert format(ctx.span.get_span_context().trace_id, "032x") == trace_id
    trace = await wait_for_trace(
        STACK.jaeger_query, trace_id, until=lambda t: len(t.named("kafka.consume")) == 1
    )
    assert trace.parent_of(trace.one("kafka.consume")).name == f"publish {topic}"
