"""The archiver: every domain event into the event store, a fetched batch at a time.

Runs as consumer group ``event-replay-archiver`` over every domain topic in the consumer
runner's batch mode, so one fetched batch is one ``insert_many`` (idempotent by ``event_id``:
a redelivered batch stores nothing twice). What it leaves out:

- replayed messages (header ``x-replay-session``): they are copies of events already stored,
  with the same ``event_id``, not new events;
- messages that can't be decoded: a warning and a counter. The consumer that failed on them has
  dead-lettered them already (every group decodes the same bytes), and the event store holds
  only valid envelopes, which is what replays rely on.

A batch that can't be written (Mongo down) raises: the runner retries it without end
(``dead_letter_topic=None``), so nothing is committed, and nothing lost, until the store is back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import metrics

from integr8scode_event_replay.adapters.event_store import stored_document
from integr8scode_events import DecodeError, decode_event
from integr8scode_events import headers as h
from integr8scode_events.kafka import RawMessage

log = logging.getLogger(__name__)


class EventStoreSink(Protocol):
    """Where archived events go (``EventStoreWriter``)."""

    async def write_batch(self, documents: Sequence[dict[str, object]]) -> int: ...


@dataclass
class ArchiverCounts:
    """What the archiver did since start (also exported as the ``event_replay.archived``
    counter, by ``outcome``)."""

    stored: int = 0
    duplicates: int = 0
    undecodable: int = 0
    replays_ignored: int = 0


class Archiver:
    """The batch handler of the archiver's consumer group."""

    def __init__(self, store: EventStoreSink, *, meter: metrics.Meter | None = None) -> None:
        self._store = store
        self.counts = ArchiverCounts()
        active = meter or metrics.get_meter(__name__)
        self._archived = active.create_counter(
            "event_replay.archived",
            unit="{event}",
            description="Messages the archiver handled, by outcome.",
        )

    async def handle_batch(self, messages: Sequence[RawMessage]) -> None:
        """Store every new event of ``messages`` with one batched write."""
        documents: list[dict[str, object]] = []
        replays = undecodable = 0
        for message in messages:
            if h.REPLAY_SESSION in message.headers:
                replays += 1
                continue
            try:
                event = decode_event(message.value)
            except DecodeError as exc:
                undecodable += 1
                log.warning(
                    "not archiving undecodable message %s[%d]@%d: %s",
                    message.topic,
                    message.partition,
                    message.offset,
                    exc,
                )
                continue
            documents.append(
                stored_document(
                    event,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    headers=message.headers,
                )
            )
        # Written first: if it raises, the batch is retried and nothing was counted yet.
        inserted = await self._store.write_batch(documents) if documents else 0
        self._count("stored", inserted)
        self._count("duplicate", len(documents) - inserted)
        self._count("undecodable", undecodable)
        self._count("replay_ignored", replays)
        self.counts.stored += inserted
        self.counts.duplicates += len(documents) - inserted
        self.counts.undecodable += undecodable
        self.counts.replays_ignored += replays

    def _count(self, outcome: str, amount: int) -> None:
        if amount:
            self._archived.add(amount, {"outcome": outcome})
