"""Stored events and the messages a replay publishes.

The event store keeps each envelope as a document plus fields of its own (``_id``, ``kafka``,
``trace``, ``stored_at``). A replay validates the document back into its typed event class (it
keeps its ``event_id``), re-serialises it, and sends it with headers that say which session
replayed it and which event it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from integr8scode_event_replay import SERVICE_NAME
from integr8scode_event_replay.domain.errors import ReplayError
from integr8scode_event_replay.domain.sessions import Cursor, PreviewItem
from integr8scode_event_replay.domain.spec import Target
from integr8scode_events import EVENT_TYPES, EventEnvelope, StoredTraceContext
from integr8scode_events import headers as h

STORE_FIELDS = ("_id", "kafka", "trace", "stored_at")


class UnreplayableEventError(ReplayError):
    """A stored document that is not (any more) a valid event of a known type: skipped."""


@dataclass(frozen=True)
class StoredEvent:
    """One document of the event store, with what a replay needs at hand."""

    event_id: str
    event_type: str
    occurred_at: datetime
    execution_id: str | None
    trace: StoredTraceContext  # the original producer span's
    document: Mapping[str, Any]

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.occurred_at, self.event_id)

    def preview(self, target: Target) -> PreviewItem:
        return PreviewItem(
            event_id=self.event_id,
            event_type=self.event_type,
            execution_id=self.execution_id,
            occurred_at=self.occurred_at,
            target_topic=target.topic_for(self.event_type),
        )


@dataclass(frozen=True)
class ReplayMessage:
    """What the publisher sends: the event re-serialised, to ``topic``, keyed by its execution
    id, with ``headers``; its producer span links to ``original_trace``."""

    topic: str
    event: EventEnvelope
    headers: Mapping[str, str]
    original_trace: StoredTraceContext

    @property
    def value(self) -> bytes:
        return self.event.to_bytes()

    @property
    def key(self) -> bytes | None:
        return self.event.key


def envelope_from_document(document: Mapping[str, Any]) -> EventEnvelope:
    """The typed event a stored document holds; ``UnreplayableEventError`` when it isn't one."""
    event_type = document.get("event_type")
    event_class = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if event_class is None:
        raise UnreplayableEventError(f"stored event has an unknown event type {event_type!r}")
    fields = {name: value for name, value in document.items() if name not in STORE_FIELDS}
    try:
        return event_class.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UnreplayableEventError(
            f"stored {event_type} {document.get('event_id')} is not a valid event any more: "
            f"{where}: {first['msg']}"
        ) from exc


def replay_headers(event: EventEnvelope, session_id: str, *, reprocess: bool) -> dict[str, str]:
    """Headers of a replayed message (the publisher adds the new ``traceparent``)."""
    headers = {
        h.EVENT_TYPE: event.event_type,
        h.CORRELATION_ID: event.correlation_id,
        h.SERVICE: SERVICE_NAME,
        h.REPLAY_SESSION: session_id,
        h.REPLAYED_EVENT_ID: str(event.event_id),
    }
    if reprocess:
        # Consumers key idempotency on (event, session) then, so they handle it again.
        headers[h.REPLAY_REPROCESS] = "true"
    return headers


def replay_message(
    stored: StoredEvent, target: Target, session_id: str, *, reprocess: bool
) -> ReplayMessage:
    """The message replaying ``stored``; ``UnreplayableEventError`` when it can't be."""
    event = envelope_from_document(stored.document)
    topic = target.topic_for(event.event_type)
    if topic is None:  # pragma: no cover - envelope_from_document refused unknown types
        raise UnreplayableEventError(f"no topic for {event.event_type}")
    return ReplayMessage(
        topic=topic,
        event=event,
        headers=replay_headers(event, session_id, reprocess=reprocess),
        original_trace=stored.trace,
    )
