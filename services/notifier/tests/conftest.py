"""Unit tests: in-memory fakes of the notifier's ports, and a dispatcher wired to them.
Integration tests: a database of its own per test on the local stack's FerretDB, and HTTP client
spans recorded in memory (the instrumentations the service installs, on a test provider).

The store keeps the Mongo adapter's semantics (the first ``open`` of an id inserts, later ones
return the stored record). Senders answer from a script of attempt results. Spans go to an
in-memory exporter of a real SDK provider; sleeps are recorded, not slept.

pytest imports this module under a name of its own, so test modules get these objects through
the fixtures and import the classes for type checking only (``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tests.stack import local_stack

from integr8scode_events import EventEnvelope, ExecutionCompleted, ProducerInfo, PublishedRecord
from integr8scode_events.kafka import MessageContext
from integr8scode_events.payloads import ExecutionCompletedPayload, OutputSummary, ResourceUsage
from integr8scode_notifier.adapters.slack import redact_for_span
from integr8scode_notifier.delivery import DeliveryPolicy, Dispatcher
from integr8scode_notifier.domain.errors import StoreUnavailableError
from integr8scode_notifier.domain.notifications import (
    Channel,
    ChannelSetting,
    Delivery,
    SlackTarget,
    UserChannels,
    WebhookTarget,
)
from integr8scode_notifier.domain.ports import OutboundMessage
from integr8scode_notifier.domain.retry import AttemptResult, Backoff
from integr8scode_notifier.domain.summary import ExecutionFacts

PRODUCER = ProducerInfo(service="execution-coordinator", version="0.0.0-test")
BASE_URL = "https://api.example.test"
WEBHOOK = WebhookTarget("https://hooks.example.test/in?token=abc", "s" * 32)
SLACK = SlackTarget("https://hooks.slack.com/services/T000/B000/XXXXSECRET")


def completed_event(
    user_id: str | None = "user-1", execution_id: str | None = None, exit_code: int = 0
) -> ExecutionCompleted:
    return ExecutionCompleted(
        producer=PRODUCER,
        correlation_id="corr-1",
        execution_id=execution_id or uuid.uuid4().hex,
        user_id=user_id,
        payload=ExecutionCompletedPayload(
            exit_code=exit_code,
            resource_usage=ResourceUsage(cpu_time_ms=10, wall_time_ms=123.4, peak_memory_kb=2048),
            output=OutputSummary(stdout_bytes=3, stderr_bytes=0, stdout_preview="45\n"),
        ),
    )


class FakeStore:
    """``DeliveryStore`` in a dict; ``down`` makes every call raise."""

    def __init__(self) -> None:
        self.records: dict[str, Delivery] = {}
        self.attempt_updates: list[tuple[str, int]] = []
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("delivery store unavailable")

    async def ensure_indexes(self) -> None:
        self._check()

    async def open(self, delivery: Delivery) -> Delivery:
        self._check()
        return self.records.setdefault(delivery.id, delivery)

    async def record_attempt(
        self, delivery_id: str, attempts: int, status_code: int | None, error: str | None
    ) -> None:
        self._check()
        self.attempt_updates.append((delivery_id, attempts))
        self.records[delivery_id] = replace(
            self.records[delivery_id], attempts=attempts, last_status_code=status_code, error=error
        )

    async def finish(self, delivery: Delivery) -> None:
        self._check()
        self.records[delivery.id] = delivery

    async def mark_announced(self, delivery_id: str) -> None:
        self._check()
        self.records[delivery_id] = replace(self.records[delivery_id], announced=True)

    def by_channel(self, channel: Channel) -> list[Delivery]:
        return [d for d in self.records.values() if d.channel is channel]


@dataclass
class FakeSettings:
    channels: dict[str, UserChannels] = field(default_factory=dict)

    async def channels_for(self, user_id: str) -> UserChannels:
        return self.channels.get(user_id, UserChannels())


@dataclass
class FakeExecutions:
    facts_by_id: dict[str, ExecutionFacts] = field(default_factory=dict)
    default: ExecutionFacts | None = field(default_factory=lambda: ExecutionFacts("python", "3.11"))

    async def facts(self, execution_id: str) -> ExecutionFacts | None:
        return self.facts_by_id.get(execution_id, self.default)


class ScriptedSender:
    """Answers each attempt with the next scripted result; the last one repeats."""

    def __init__(self, channel: Channel, results: Iterable[AttemptResult] = ()) -> None:
        self.channel = channel
        self.results = list(results) or [AttemptResult.of_status(200)]
        self.sent: list[OutboundMessage] = []

    def script(self, *results: AttemptResult) -> None:
        self.results = list(results)

    async def send(self, message: OutboundMessage) -> AttemptResult:
        self.sent.append(message)
        index = min(len(self.sent) - 1, len(self.results) - 1)
        return self.results[index]


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[EventEnvelope] = []

    async def publish(self, event: EventEnvelope) -> PublishedRecord:
        self.published.append(event)
        return PublishedRecord(event.topic.name, 0, len(self.published))


@dataclass
class Harness:
    dispatcher: Dispatcher
    store: FakeStore
    settings: FakeSettings
    executions: FakeExecutions
    webhook: ScriptedSender
    slack: ScriptedSender
    publisher: FakePublisher
    exporter: InMemorySpanExporter
    provider: TracerProvider
    sleeps: list[float]

    def configure(
        self, user_id: str = "user-1", *, webhook: bool = True, slack: bool = True
    ) -> None:
        self.settings.channels[user_id] = UserChannels(
            webhook=ChannelSetting.of(WEBHOOK) if webhook else None,
            slack=ChannelSetting.of(SLACK) if slack else None,
        )

    async def handle(self, event: ExecutionCompleted, key: str | None = None) -> Span:
        """Run the dispatcher inside a stand-in ``kafka.consume`` span; returns that span."""
        tracer = self.provider.get_tracer("test")
        with tracer.start_as_current_span("kafka.consume") as span:
            await self.dispatcher.notify(event, key or str(event.event_id), span)
        return span

    def spans(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]


def message_context(span: Span, headers: dict[str, str] | None = None) -> MessageContext:
    return MessageContext(
        topic="execution_events",
        partition=0,
        offset=1,
        key=None,
        headers=headers or {},
        group_id="notifier",
        attempt=1,
        span=span,
    )


@pytest.fixture
def make_event() -> Callable[..., ExecutionCompleted]:
    """``completed_event``: an ``execution.completed`` of user-1 (exit code 0, 123.4 ms)."""
    return completed_event


@pytest.fixture
def make_context() -> Callable[..., MessageContext]:
    """``message_context``: a ``MessageContext`` around a span, with the given headers."""
    return message_context


@pytest.fixture
def harness() -> Harness:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store, settings, executions = FakeStore(), FakeSettings(), FakeExecutions()
    webhook, slack = ScriptedSender(Channel.WEBHOOK), ScriptedSender(Channel.SLACK)
    publisher = FakePublisher()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    dispatcher = Dispatcher(
        settings=settings,
        executions=executions,
        store=store,
        senders=[webhook, slack],
        publisher=publisher,
        producer=ProducerInfo(service="notifier", version="0.0.0-test"),
        public_base_url=BASE_URL,
        policy=DeliveryPolicy(attempts=3, backoff=Backoff(initial_s=0.5, max_s=4.0)),
        tracer=provider.get_tracer("notifier"),
        clock=lambda: datetime.now(UTC),
        sleep=sleep,
    )
    return Harness(
        dispatcher,
        store,
        settings,
        executions,
        webhook,
        slack,
        publisher,
        exporter,
        provider,
        sleeps,
    )


# --- integration: the local stack -----------------------------------------------------------

STACK = local_stack()


@pytest.fixture
async def database() -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    name = f"notifier_it_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
def client_spans() -> Iterator[InMemorySpanExporter]:
    """HTTPX and aiohttp client spans of this test, in memory."""
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    httpx_instrumentor, aiohttp_instrumentor = (
        HTTPXClientInstrumentor(),
        AioHttpClientInstrumentor(),
    )
    assert not httpx_instrumentor.is_instrumented_by_opentelemetry
    assert not aiohttp_instrumentor.is_instrumented_by_opentelemetry
    httpx_instrumentor.instrument(tracer_provider=provider)
    aiohttp_instrumentor.instrument(tracer_provider=provider, url_filter=redact_for_span)
    try:
        yield exporter
    finally:
        httpx_instrumentor.uninstrument()
        aiohttp_instrumentor.uninstrument()
