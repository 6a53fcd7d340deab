"""stored_document: what the archiver writes for one consumed event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from integr8scode_event_replay.adapters.event_store import stored_document
from integr8scode_events.envelope import EventEnvelope
from integr8scode_events.events import ExecutionRequested

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


@pytest.fixture
def requested(make_lifecycle: Callable[..., list[EventEnvelope]]) -> ExecutionRequested:
    event = make_lifecycle()[0]
    assert isinstance(event, ExecutionRequested)
    return event


def test_keeps_the_trace_context_and_derives_its_ids(requested: ExecutionRequested) -> None:
    doc = stored_document(
        requested,
        topic="execution_requests",
        partition=3,
        offset=42,
        headers={"traceparent": TRACEPARENT, "tracestate": "vendor=x", "service": "api"},
    )
    assert doc["trace"] == {
        "traceparent": TRACEPARENT,
        "tracestate": "vendor=x",
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
    }


def test_stores_the_kafka_position(requested: ExecutionRequested) -> None:
    doc = stored_document(requested, topic="execution_requests", partition=3, offset=42, headers={})
    assert doc["kafka"] == {"topic": "execution_requests", "partition": 3, "offset": 42}


def test_occurred_at_stays_a_datetime_and_the_rest_is_json(requested: ExecutionRequested) -> None:
    doc = stored_document(requested, topic="t", partition=0, offset=0, headers={})
    assert isinstance(doc["occurred_at"], datetime)
    assert doc["occurred_at"] == requested.occurred_at
    assert doc["occurred_at"].tzinfo is not None
    assert isinstance(doc["stored_at"], datetime)
    assert doc["stored_at"].tzinfo is not None
    # The fields replays filter by, as plain values.
    assert doc["event_id"] == str(requested.event_id)
    assert doc["event_type"] == "execution.requested"
    assert doc["execution_id"] == requested.execution_id
    assert doc["user_id"] == requested.user_id
    # The limits issue 14 added are optional and stored as null when the event has none.
    assert doc["payload"]["limits"] == {
        "timeout_s": 5.0,
        "memory_mb": 128,
        "cpu_time_s": None,
        "max_processes": None,
        "max_output_kb": None,
    }


@pytest.mark.parametrize("step", [0, 1, 2], ids=["requested", "started", "completed"])
def test_the_stored_document_decodes_back_to_the_event(
    make_lifecycle: Callable[..., list[EventEnvelope]], step: int
) -> None:
    any_event = make_lifecycle()[step]
    doc = stored_document(any_event, topic="t", partition=0, offset=0, headers={})
    envelope = {k: v for k, v in doc.items() if k not in {"kafka", "trace", "stored_at", "_id"}}
    assert type(any_event).model_validate(envelope) == any_event


def test_without_trace_headers_the_ids_are_none(requested: ExecutionRequested) -> None:
    doc = stored_document(requested, topic="t", partition=0, offset=0, headers={})
    assert doc["trace"] == {
        "traceparent": None,
        "tracestate": None,
        "trace_id": None,
        "span_id": None,
    }


def test_a_malformed_traceparent_is_kept_but_gives_no_ids(requested: ExecutionRequested) -> None:
    doc = stored_document(
        requested, topic="t", partition=0, offset=0, headers={"traceparent": "garbage"}
    )
    assert doc["trace"] == {
        "traceparent": "garbage",
        "tracestate": None,
        "trace_id": None,
        "span_id": None,
    }
