"""One valid instance of every event, and a recording span to hand to handlers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integr8scode_events.envelope import EventEnvelope, ProducerInfo
from integr8scode_events.events import (
    ExecutionCancelled,
    ExecutionCancelRequested,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionRequested,
    ExecutionStarted,
    ExecutionTimedOut,
    NotificationFailed,
    NotificationSent,
)
from integr8scode_events.payloads import (
    ExecutionCancelledPayload,
    ExecutionCancelRequestedPayload,
    ExecutionCompletedPayload,
    ExecutionFailedPayload,
    ExecutionLimits,
    ExecutionRequestedPayload,
    ExecutionStartedPayload,
    ExecutionTimedOutPayload,
    NotificationPayload,
    OutputSummary,
    ResourceUsage,
)

PRODUCER = ProducerInfo(service="unit-test", version="0.0.1")
EXECUTION_ID = "ex-0001"
_USAGE = ResourceUsage(cpu_time_ms=12.5, wall_time_ms=40.0, peak_memory_kb=2048)
_OUTPUT = OutputSummary(stdout_bytes=6, stderr_bytes=0, stdout_preview="hello\n")


def _common() -> dict[str, object]:
    return {
        "producer": PRODUCER,
        "correlation_id": "corr-1",
        "execution_id": EXECUTION_ID,
        "user_id": "user-1",
    }


def every_event() -> list[EventEnvelope]:
    """One instance of each event class, with every payload field that matters set."""
    notification = {
        "notification_id": "n-1",
        "channel": "webhook",
        "execution_status": "completed",
        "attempts": 2,
    }
    return [
        ExecutionRequested(
            payload=ExecutionRequestedPayload(
                script="print('hello')",
                language="python",
                language_version="3.11",
                stdin="x",
                limits=ExecutionLimits(timeout_s=5.0, memory_mb=128),
            ),
            **_common(),
        ),
        ExecutionCancelRequested(
            payload=ExecutionCancelRequestedPayload(requested_by="user-1"),
            **_common(),
        ),
        ExecutionStarted(
            payload=ExecutionStartedPayload(
                runner="subprocess",
                started_at=datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
                queue_wait_ms=3.5,
            ),
            **_common(),
        ),
        ExecutionCompleted(
            payload=ExecutionCompletedPayload(exit_code=0, resource_usage=_USAGE, output=_OUTPUT),
            **_common(),
        ),
        ExecutionFailed(
            payload=ExecutionFailedPayload(
                error="memory limit exceeded",
                error_type="limit_exceeded",
                exit_code=137,
                resource_usage=_USAGE,
                output=_OUTPUT,
            ),
            **_common(),
        ),
        ExecutionTimedOut(
            payload=ExecutionTimedOutPayload(timeout_s=5.0, resource_usage=_USAGE, output=_OUTPUT),
            **_common(),
        ),
        ExecutionCancelled(
            payload=ExecutionCancelledPayload(
                reason="cancelled by user", cancelled_by="user-1", was_running=True
            ),
            **_common(),
        ),
        NotificationSent(
            payload=NotificationPayload.model_validate({**notification, "status_code": 200}),
            **_common(),
        ),
        NotificationFailed(
            payload=NotificationPayload.model_validate({**notification, "error": "HTTP 502"}),
            **_common(),
        ),
    ]


@pytest.fixture
def requested() -> ExecutionRequested:
    event = every_event()[0]
    assert isinstance(event, ExecutionRequested)
    return event


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def consume_span(span_exporter: InMemorySpanExporter) -> Iterator[trace.Span]:
    """A recording SDK span, ended (and exported) after the test."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    span = provider.get_tracer("test").start_span("kafka.consume", kind=trace.SpanKind.CONSUMER)
    yield span
    if span.is_recording():
        span.end()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test asking for ``any_event`` runs once per event class."""
    if "any_event" in metafunc.fixturenames:
        events = every_event()
        metafunc.parametrize("any_event", events, ids=[e.event_type for e in events])


@pytest.fixture
def all_events() -> list[EventEnvelope]:
    return every_event()
