"""What trace context a receiver sees: none by default (the platform's trace ids stay inside),
the client span's with ``propagate_trace_context``, and the consumed message's unchanged when
tracing is off. The client span is recorded either way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests.e2e.notify_receivers import RecordingReceiver

from integr8scode_events import ExecutionCompleted, ProducerInfo
from integr8scode_events.payloads import ExecutionCompletedPayload, OutputSummary, ResourceUsage
from integr8scode_notifier.adapters.address_guard import AddressGuard
from integr8scode_notifier.adapters.slack import SlackSender
from integr8scode_notifier.adapters.webhook import WebhookSender
from integr8scode_notifier.domain.addresses import AddressPolicy
from integr8scode_notifier.domain.notifications import SlackTarget, Target, WebhookTarget
from integr8scode_notifier.domain.ports import OutboundMessage
from integr8scode_notifier.domain.retry import Outcome
from integr8scode_notifier.domain.summary import ExecutionFacts, summarize
from integr8scode_telemetry.outbound_trace import w3c_propagator

LOCAL = AddressGuard(AddressPolicy(allow_loopback=True))
CONTEXT_HEADERS = ("traceparent", "tracestate", "baggage")
INBOUND = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "vendor=upstream",
    "baggage": "tenant=internal",
}


def _message(target: Target) -> OutboundMessage:
    event = ExecutionCompleted(
        producer=ProducerInfo(service="it", version="0"),
        correlation_id="c",
        execution_id=f"exec-{uuid.uuid4().hex[:8]}",
        user_id="u",
        occurred_at=datetime(2030, 1, 1, tzinfo=UTC),
        payload=ExecutionCompletedPayload(
            exit_code=0,
            resource_usage=ResourceUsage(cpu_time_ms=1, wall_time_ms=42, peak_memory_kb=1),
            output=OutputSummary(stdout_bytes=3, stderr_bytes=0, stdout_preview="45\n"),
        ),
    )
    return OutboundMessage(
        notification_id=str(uuid.uuid4()),
        event_id=str(event.event_id),
        event_type=event.event_type,
        target=target,
        summary=summarize(event, ExecutionFacts("python", "3.11"), "http://127.0.0.1:8000"),
        attempt=1,
    )


@pytest.fixture(autouse=True)
def service_propagator() -> Iterator[None]:
    """The global propagator ``init_telemetry`` installs in the service."""
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(w3c_propagator())
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


@pytest.fixture
def in_a_delivery() -> Iterator[None]:
    """A recording ``notification.deliver`` span with internal baggage, as the dispatcher runs
    a send."""
    token = otel_context.attach(baggage.set_baggage("tenant", "internal"))
    try:
        with TracerProvider().get_tracer("it").start_as_current_span("notification.deliver"):
            yield
    finally:
        otel_context.detach(token)


@pytest.fixture
def consumed_untraced() -> Iterator[None]:
    """Tracing off: the consumed message's context is current, nothing records."""
    token = otel_context.attach(propagate.extract(INBOUND))
    try:
        yield
    finally:
        otel_context.detach(token)


@pytest.fixture
async def receiver() -> AsyncIterator[RecordingReceiver]:
    async with RecordingReceiver() as server:
        yield server


def _target(channel: str, receiver: RecordingReceiver) -> Target:
    if channel == "webhook":
        return WebhookTarget(receiver.url("/hook"), None)
    return SlackTarget(receiver.url("/services/T/B/SECRET"))


async def _send(channel: str, receiver: RecordingReceiver, *, propagate_context: bool) -> None:
    target = _target(channel, receiver)
    if channel == "webhook":
        webhook = WebhookSender(
            LOCAL, timeout_s=2, user_agent="it", propagate_trace_context=propagate_context
        )
        result = await webhook.send(_message(target))
    else:
        slack = SlackSender(
            LOCAL, timeout_s=2, user_agent="it", propagate_trace_context=propagate_context
        )
        try:
            result = await slack.send(_message(target))
        finally:
            await slack.close()
    assert result.outcome is Outcome.DELIVERED


def _client_span(exporter: InMemorySpanExporter) -> trace.SpanContext:
    [span] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert span.context is not None
    context: trace.SpanContext = span.context
    return context


@pytest.mark.parametrize("channel", ["webhook", "slack"])
@pytest.mark.usefixtures("in_a_delivery")
async def test_third_parties_get_no_trace_context_by_default(
    channel: str, receiver: RecordingReceiver, client_spans: InMemorySpanExporter
) -> None:
    await _send(channel, receiver, propagate_context=False)
    (request,) = receiver.requests
    assert [name for name in CONTEXT_HEADERS if request.header(name) is not None] == []
    assert _client_span(client_spans).is_valid  # the attempt is still in the trace


@pytest.mark.parametrize("channel", ["webhook", "slack"])
@pytest.mark.usefixtures("in_a_delivery")
async def test_a_trusted_receiver_continues_the_trace_from_the_client_span(
    channel: str, receiver: RecordingReceiver, client_spans: InMemorySpanExporter
) -> None:
    await _send(channel, receiver, propagate_context=True)
    (request,) = receiver.requests
    client = _client_span(client_spans)
    traceparent = request.header("traceparent")
    assert traceparent is not None
    _, trace_id, parent_id, _ = traceparent.split("-")
    assert trace_id == trace.format_trace_id(client.trace_id)
    assert parent_id == trace.format_span_id(client.span_id)
    assert request.header("baggage") == "tenant=internal"


@pytest.mark.parametrize("channel", ["webhook", "slack"])
@pytest.mark.usefixtures("consumed_untraced")
async def test_with_tracing_off_a_trusted_receiver_gets_the_consumed_context_unchanged(
    channel: str, receiver: RecordingReceiver
) -> None:
    await _send(channel, receiver, propagate_context=True)
    (request,) = receiver.requests
    assert {name: request.header(name) for name in CONTEXT_HEADERS} == INBOUND


@pytest.mark.parametrize("channel", ["webhook", "slack"])
@pytest.mark.usefixtures("consumed_untraced")
async def test_with_tracing_off_third_parties_still_get_nothing(
    channel: str, receiver: RecordingReceiver
) -> None:
    await _send(channel, receiver, propagate_context=False)
    (request,) = receiver.requests
    assert [name for name in CONTEXT_HEADERS if request.header(name) is not None] == []
