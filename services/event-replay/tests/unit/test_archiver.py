"""The archiver's batch handler: new events stored in one write, replays and undecodable
messages left out (counted), a failing write raised so the batch is retried."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from integr8scode_event_replay.handlers.archiver import Archiver
from integr8scode_events import headers as h
from integr8scode_events.errors import EventsError
from integr8scode_events.kafka import RawMessage


class FakeStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.down = False

    async def write_batch(self, documents: Sequence[dict[str, Any]]) -> int:
        self.writes += 1
        if self.down:
            raise EventsError("event store write failed: down")
        new = 0
        for doc in documents:
            if doc["event_id"] not in self.docs:
                self.docs[doc["event_id"]] = doc
                new += 1
        return new


def message(value: bytes | None, offset: int = 0, **headers: str) -> RawMessage:
    return RawMessage(
        topic="execution_events",
        partition=1,
        offset=offset,
        key=b"k",
        value=value,
        headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", **headers},
        timestamp_ms=0,
    )


@pytest.fixture
def events(make_lifecycle: Callable[..., list[Any]]) -> list[Any]:
    return make_lifecycle()


async def test_a_batch_is_stored_in_one_write_with_its_kafka_and_trace_context(
    events: list[Any],
) -> None:
    store = FakeStore()
    archiver = Archiver(store)
    await archiver.handle_batch([message(e.to_bytes(), i) for i, e in enumerate(events)])
    assert store.writes == 1
    assert set(store.docs) == {str(e.event_id) for e in events}
    doc = store.docs[str(events[1].event_id)]
    assert doc["kafka"] == {"topic": "execution_events", "partition": 1, "offset": 1}
    assert doc["trace"]["trace_id"] == "a" * 32
    assert archiver.counts.stored == 3


async def test_the_same_events_again_store_nothing_new(events: list[Any]) -> None:
    store = FakeStore()
    archiver = Archiver(store)
    batch = [message(e.to_bytes(), i) for i, e in enumerate(events)]
    await archiver.handle_batch(batch)
    await archiver.handle_batch([*batch, batch[0]])
    assert len(store.docs) == 3
    assert archiver.counts.stored == 3
    assert archiver.counts.duplicates == 4


async def test_replays_and_undecodable_messages_are_not_archived(events: list[Any]) -> None:
    store = FakeStore()
    archiver = Archiver(store)
    await archiver.handle_batch(
        [
            message(b"{not json", 0),
            message(None, 1),
            message(events[0].to_bytes(), 2, **{h.REPLAY_SESSION: "s-1"}),
            message(events[1].to_bytes(), 3),
        ]
    )
    assert set(store.docs) == {str(events[1].event_id)}
    assert archiver.counts.undecodable == 2
    assert archiver.counts.replays_ignored == 1


async def test_a_batch_with_nothing_to_store_writes_nothing(events: list[Any]) -> None:
    store = FakeStore()
    await Archiver(store).handle_batch([message(b"[]", 0)])
    assert store.writes == 0


async def test_a_failing_write_raises_so_the_batch_is_retried(events: list[Any]) -> None:
    store = FakeStore()
    store.down = True
    archiver = Archiver(store)
    with pytest.raises(EventsError):
        await archiver.handle_batch([message(events[0].to_bytes())])
    assert archiver.counts.stored == 0
    store.down = False
    await archiver.handle_batch([message(events[0].to_bytes())])
    assert archiver.counts.stored == 1
