"""Stored documents back to envelope bytes, and the headers a replayed message carries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.trace import TraceFlags

from integr8scode_event_replay.adapters.event_store import stored_document
from integr8scode_event_replay.adapters.kafka_replay import ORIGINAL_EVENT_ID, original_links
from integr8scode_event_replay.adapters.mongo_events import stored_event
from integr8scode_event_replay.domain.messages import (
    UnreplayableEventError,
    envelope_from_document,
    replay_headers,
    replay_message,
)
from integr8scode_event_replay.domain.spec import Target
from integr8scode_events import EventEnvelope, decode_event
from integr8scode_events import headers as h


@pytest.fixture
def events(make_lifecycle: Callable[..., list[EventEnvelope]]) -> list[EventEnvelope]:
    # Milliseconds: what a BSON date keeps of occurred_at.
    return make_lifecycle(start=datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC))


def _as_mongo_returns_it(event: EventEnvelope) -> dict[str, Any]:
    doc = stored_document(
        event, topic=event.topic.name, partition=2, offset=7, headers={"traceparent": "x"}
    )
    doc["_id"] = uuid.uuid4().hex
    return doc


def test_a_stored_document_becomes_the_same_envelope_and_bytes(
    events: list[EventEnvelope],
) -> None:
    for event in events:
        rebuilt = envelope_from_document(_as_mongo_returns_it(event))
        assert type(rebuilt) is type(event)
        assert rebuilt == event
        assert rebuilt.event_id == event.event_id
        assert rebuilt.to_bytes() == event.to_bytes()
        assert decode_event(rebuilt.to_bytes()) == event


def test_the_store_fields_do_not_leak_into_the_envelope(events: list[EventEnvelope]) -> None:
    body = json.loads(envelope_from_document(_as_mongo_returns_it(events[0])).to_bytes())
    assert not {"_id", "kafka", "trace", "stored_at"} & set(body)


def test_an_unknown_type_or_an_invalid_document_is_unreplayable(
    events: list[EventEnvelope],
) -> None:
    doc = _as_mongo_returns_it(events[0])
    with pytest.raises(UnreplayableEventError, match=r"unknown event type 'x\.y'"):
        envelope_from_document({**doc, "event_type": "x.y"})
    broken = {**doc, "payload": {**doc["payload"], "language": None}}
    with pytest.raises(UnreplayableEventError, match=r"payload\.language"):
        envelope_from_document(broken)


def test_replay_headers_name_the_session_and_the_event(events: list[EventEnvelope]) -> None:
    event = events[0]
    headers = replay_headers(event, "sess-1", reprocess=False)
    assert headers == {
        h.EVENT_TYPE: "execution.requested",
        h.CORRELATION_ID: event.correlation_id,
        h.SERVICE: "event-replay",
        h.REPLAY_SESSION: "sess-1",
        h.REPLAYED_EVENT_ID: str(event.event_id),
    }
    assert replay_headers(event, "sess-1", reprocess=True)[h.REPLAY_REPROCESS] == "true"


def test_a_replay_message_goes_to_the_target_keyed_by_execution(
    events: list[EventEnvelope],
) -> None:
    stored = stored_event(_as_mongo_returns_it(events[2]))
    original = replay_message(stored, Target(), "s", reprocess=False)
    assert original.topic == "execution_events"
    assert original.key == events[2].execution_id.encode()  # type: ignore[union-attr]
    assert original.value == events[2].to_bytes()
    named = replay_message(stored, Target("audit"), "s", reprocess=False)
    assert named.topic == "audit"


def test_the_link_points_at_the_original_producer_span(events: list[EventEnvelope]) -> None:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    doc = stored_document(
        events[0],
        topic="execution_requests",
        partition=0,
        offset=0,
        headers={"traceparent": f"00-{trace_id}-{span_id}-01", "tracestate": "vendor=x"},
    )
    message = replay_message(stored_event(doc), Target(), "s", reprocess=False)
    (link,) = original_links(message)
    assert link.context.trace_id == int(trace_id, 16)
    assert link.context.span_id == int(span_id, 16)
    assert link.context.is_remote
    assert link.context.trace_flags == TraceFlags.SAMPLED
    assert link.context.trace_state.get("vendor") == "x"
    assert link.attributes == {ORIGINAL_EVENT_ID: str(events[0].event_id)}
    no_context = replay_message(
        stored_event({**doc, "trace": {"traceparent": None}}), Target(), "s", reprocess=False
    )
    assert original_links(no_context) == []
    for unusable in ({"traceparent": "garbage"}, "not a mapping", None):
        odd = replay_message(
            stored_event({**doc, "trace": unusable}), Target(), "s", reprocess=False
        )
        assert original_links(odd) == []
