"""A service with tracing off in the middle of a chain, on real Kafka: upstream (traced) →
middle (consumer + publisher, telemetry off) → downstream (traced). The downstream consumer
continues the upstream trace, its parent being the upstream PRODUCER span: the middle hop
forwarded the context unchanged and recorded nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests.kafka_support import running, sample_event
from tests.polling import eventually

from integr8scode_events import ExecutionRequested
from integr8scode_events import headers as h
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    HandlerRegistry,
    KafkaSettings,
    MessageContext,
)
from integr8scode_telemetry import TelemetrySettings, init_telemetry
from integr8scode_telemetry.setup import TelemetryHandle


def _telemetry(service: str, settings: TelemetrySettings) -> tuple[TelemetryHandle, Any]:
    exporter = InMemorySpanExporter()
    handle = init_telemetry(
        settings,
        service,
        "it",
        set_global=False,
        instrument_libraries=False,
        span_exporter=exporter,
    )
    return handle, exporter


@pytest.mark.parametrize(
    "off", [TelemetrySettings(sdk_disabled=True), TelemetrySettings(sampler="off")]
)
async def test_the_hop_after_an_untraced_service_continues_the_trace(
    kafka_settings: KafkaSettings, new_topic: Callable[[], Any], off: TelemetrySettings
) -> None:
    suffix = uuid.uuid4().hex[:6]
    upstream, upstream_spans = _telemetry(f"it-upstream-{suffix}", TelemetrySettings())
    middle, middle_spans = _telemetry(f"it-middle-{suffix}", off)
    downstream, downstream_spans = _telemetry(f"it-downstream-{suffix}", TelemetrySettings())
    first_topic, second_topic = await new_topic(), await new_topic()
    forwarded: list[str] = []
    arrived: list[dict[str, str]] = []

    try:
        async with (
            EventPublisher(
                kafka_settings, "it-upstream", tracer_provider=upstream.tracer_provider
            ) as upstream_publisher,
            EventPublisher(
                kafka_settings, "it-middle", tracer_provider=middle.tracer_provider
            ) as middle_publisher,
        ):

            async def forward(event: ExecutionRequested, ctx: MessageContext) -> None:
                follow_up = sample_event(f"{event.execution_id}-next")
                await middle_publisher.publish(follow_up, topic=second_topic)
                forwarded.append(str(follow_up.event_id))

            async def receive(event: ExecutionRequested, ctx: MessageContext) -> None:
                arrived.append(dict(ctx.headers))

            middle_runner = ConsumerRunner(
                settings=kafka_settings,
                group_id=f"it-middle-{suffix}",
                topics=[first_topic],
                publisher=middle_publisher,
                handlers=HandlerRegistry().on(ExecutionRequested, forward),
                tracer_provider=middle.tracer_provider,
            )
            downstream_runner = ConsumerRunner(
                settings=kafka_settings,
                group_id=f"it-downstream-{suffix}",
                topics=[second_topic],
                publisher=middle_publisher,
                handlers=HandlerRegistry().on(ExecutionRequested, receive),
                tracer_provider=downstream.tracer_provider,
            )
            async with running(middle_runner), running(downstream_runner):
                tracer = upstream.tracer_provider.get_tracer("it")
                with tracer.start_as_current_span("it.request"):
                    await upstream_publisher.publish(sample_event(), topic=first_topic)

                async def consumed_downstream() -> bool:
                    downstream.force_flush()  # the CONSUMER span ends after the handler
                    return any(
                        s.kind is SpanKind.CONSUMER for s in downstream_spans.get_finished_spans()
                    )

                await eventually(
                    consumed_downstream, timeout_s=30, what="message through the middle hop"
                )
        for handle in (upstream, middle):
            handle.force_flush()
    finally:
        for handle in (upstream, middle, downstream):
            handle.shutdown()

    [upstream_publish] = [
        s for s in upstream_spans.get_finished_spans() if s.kind is SpanKind.PRODUCER
    ]
    [downstream_consume] = [
        s for s in downstream_spans.get_finished_spans() if s.kind is SpanKind.CONSUMER
    ]
    assert middle_spans.get_finished_spans() == ()  # the middle hop recorded nothing
    expected = upstream_publish.context
    # The downstream message carries the upstream PRODUCER span's context as it was.
    assert arrived[0][h.TRACEPARENT] == (
        f"00-{trace.format_trace_id(expected.trace_id)}-"
        f"{trace.format_span_id(expected.span_id)}-{int(expected.trace_flags):02x}"
    )
    assert downstream_consume.context.trace_id == expected.trace_id
    assert downstream_consume.parent is not None
    assert downstream_consume.parent.span_id == expected.span_id
    assert downstream_consume.context.trace_flags.sampled
    assert forwarded
