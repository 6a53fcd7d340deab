"""idempotent(): each event handled once per consumer, with an in-memory ProcessedEvents."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integr8scode_events import headers as h
from integr8scode_events.errors import AlreadyBeingProcessedError
from integr8scode_events.events import ExecutionRequested
from integr8scode_events.kafka.handlers import MessageContext
from integr8scode_events.kafka.idempotency import (
    DUPLICATE_ATTRIBUTE,
    Claim,
    ProcessedEvents,
    idempotency_key,
    idempotent,
)

CONSUMER = "coordinator"


class InMemoryProcessedEvents:
    """``ProcessedEvents`` in a dict: ``processing`` until completed, gone when released."""

    def __init__(self) -> None:
        self.status: dict[tuple[str, str], str] = {}
        self.held_elsewhere: set[tuple[str, str]] = set()
        self.calls: list[tuple[str, str]] = []

    async def claim(self, consumer: str, key: str) -> Claim:
        self.calls.append(("claim", key))
        if (consumer, key) in self.held_elsewhere:
            return Claim.BUSY
        current = self.status.get((consumer, key))
        if current == "done":
            return Claim.DONE
        if current == "processing":
            return Claim.BUSY
        self.status[(consumer, key)] = "processing"
        return Claim.NEW

    async def complete(self, consumer: str, key: str) -> None:
        self.calls.append(("complete", key))
        self.status[(consumer, key)] = "done"

    async def release(self, consumer: str, key: str) -> None:
        self.calls.append(("release", key))
        if self.status.get((consumer, key)) == "processing":
            del self.status[(consumer, key)]


class FlakyHandler:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.seen: list[uuid.UUID] = []

    async def __call__(self, event: ExecutionRequested, ctx: MessageContext) -> None:
        self.seen.append(event.event_id)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("sandbox unavailable")


def _ctx(
    span: trace.Span, headers: Mapping[str, str] | None = None, offset: int = 7
) -> MessageContext:
    return MessageContext(
        topic="execution_requests",
        partition=0,
        offset=offset,
        key=b"ex-0001",
        headers=headers or {},
        group_id=CONSUMER,
        attempt=1,
        span=span,
    )


def _store() -> InMemoryProcessedEvents:
    store = InMemoryProcessedEvents()
    _: ProcessedEvents = store  # the fake satisfies the Protocol (checked by mypy)
    return store


async def test_same_event_delivered_twice_is_handled_once(
    requested: ExecutionRequested,
    consume_span: trace.Span,
    span_exporter: InMemorySpanExporter,
) -> None:
    store = _store()
    handler = FlakyHandler()
    once = idempotent(store, CONSUMER, handler)

    await once(requested, _ctx(trace.INVALID_SPAN))
    assert handler.seen == [requested.event_id]
    assert store.status == {(CONSUMER, str(requested.event_id)): "done"}

    await once(requested, _ctx(consume_span, offset=8))
    consume_span.end()

    assert handler.seen == [requested.event_id]
    (span,) = span_exporter.get_finished_spans()
    assert (span.attributes or {})[DUPLICATE_ATTRIBUTE] is True


async def test_first_delivery_is_not_marked_duplicate(
    requested: ExecutionRequested,
    consume_span: trace.Span,
    span_exporter: InMemorySpanExporter,
) -> None:
    await idempotent(_store(), CONSUMER, FlakyHandler())(requested, _ctx(consume_span))
    consume_span.end()
    (span,) = span_exporter.get_finished_spans()
    assert DUPLICATE_ATTRIBUTE not in (span.attributes or {})


async def test_a_failed_handler_releases_its_claim_so_a_retry_runs_it(
    requested: ExecutionRequested,
) -> None:
    store = _store()
    handler = FlakyHandler(failures=1)
    once = idempotent(store, CONSUMER, handler)
    key = str(requested.event_id)

    with pytest.raises(RuntimeError, match="sandbox unavailable"):
        await once(requested, _ctx(trace.INVALID_SPAN))
    assert store.status == {}
    assert ("release", key) in store.calls
    assert ("complete", key) not in store.calls

    await once(requested, _ctx(trace.INVALID_SPAN))
    assert handler.seen == [requested.event_id, requested.event_id]
    assert store.status == {(CONSUMER, key): "done"}


async def test_busy_claim_raises_without_running_the_handler(
    requested: ExecutionRequested,
) -> None:
    store = _store()
    store.held_elsewhere.add((CONSUMER, str(requested.event_id)))
    handler = FlakyHandler()

    with pytest.raises(AlreadyBeingProcessedError):
        await idempotent(store, CONSUMER, handler)(requested, _ctx(trace.INVALID_SPAN))

    assert handler.seen == []
    # A BUSY claim is not ours: releasing it would free another consumer's lease.
    assert [c for c, _ in store.calls] == ["claim"]


async def test_consumers_are_independent(requested: ExecutionRequested) -> None:
    store = _store()
    coordinator, archiver = FlakyHandler(), FlakyHandler()
    await idempotent(store, "coordinator", coordinator)(requested, _ctx(trace.INVALID_SPAN))
    await idempotent(store, "archiver", archiver)(requested, _ctx(trace.INVALID_SPAN))
    assert coordinator.seen == archiver.seen == [requested.event_id]


def test_idempotency_key_is_the_event_id(requested: ExecutionRequested) -> None:
    assert idempotency_key(requested, _ctx(trace.INVALID_SPAN)) == str(requested.event_id)


@pytest.mark.parametrize(
    "headers",
    [
        {h.REPLAY_SESSION: "s-1"},
        {h.REPLAY_SESSION: "s-1", h.REPLAY_REPROCESS: "false"},
        {h.REPLAY_REPROCESS: "true"},
        {h.REPLAY_SESSION: "", h.REPLAY_REPROCESS: "true"},
    ],
)
def test_replays_without_reprocess_share_the_original_key(
    requested: ExecutionRequested, headers: dict[str, str]
) -> None:
    assert idempotency_key(requested, _ctx(trace.INVALID_SPAN, headers)) == str(requested.event_id)


async def test_reprocessing_replay_gets_its_own_key_per_session(
    requested: ExecutionRequested,
) -> None:
    store = _store()
    handler = FlakyHandler()
    once = idempotent(store, CONSUMER, handler)

    def replay(session: str) -> MessageContext:
        return _ctx(trace.INVALID_SPAN, {h.REPLAY_SESSION: session, h.REPLAY_REPROCESS: "true"})

    assert idempotency_key(requested, replay("s-1")) == f"{requested.event_id}:replay:s-1"

    await once(requested, _ctx(trace.INVALID_SPAN))
    await once(requested, replay("s-1"))
    await once(requested, replay("s-1"))  # the same replay redelivered: skipped
    await once(requested, replay("s-2"))
    await once(requested, _ctx(trace.INVALID_SPAN, {h.REPLAY_SESSION: "s-3"}))  # no reprocess

    assert len(handler.seen) == 3
    assert set(store.status) == {
        (CONSUMER, str(requested.event_id)),
        (CONSUMER, f"{requested.event_id}:replay:s-1"),
        (CONSUMER, f"{requested.event_id}:replay:s-2"),
    }
