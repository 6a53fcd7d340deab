"""Mongo command spans: named ``<operation> <collection>``, stable database attributes, errors
from the server's reply, nothing under ``untraced()``, one listener per process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode
from pymongo import monitoring

from integr8scode_telemetry import untraced
from integr8scode_telemetry.mongo_spans import (
    MongoCommandSpans,
    MongoInstrumentation,
    mongo_span_name,
)

SERVER = ("127.0.0.1", 27017)


@dataclass
class Event:
    """The fields of PyMongo's command events the listener reads."""

    command_name: str
    request_id: int
    command: dict[str, Any] = field(default_factory=dict)
    database_name: str = "integr8scode"
    connection_id: tuple[str, int] | None = SERVER
    failure: dict[str, Any] = field(default_factory=dict)


def _started(listener: MongoCommandSpans, event: Event) -> None:
    listener.started(cast("monitoring.CommandStartedEvent", event))


def _succeeded(listener: MongoCommandSpans, event: Event) -> None:
    listener.succeeded(cast("monitoring.CommandSucceededEvent", event))


def _failed(listener: MongoCommandSpans, event: Event) -> None:
    listener.failed(cast("monitoring.CommandFailedEvent", event))


@pytest.fixture
def traced() -> Iterator[tuple[MongoCommandSpans, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield MongoCommandSpans(provider.get_tracer("t")), exporter
    provider.shutdown()


def _one(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = exporter.get_finished_spans()
    return span


def test_a_command_on_a_collection_is_named_operation_then_collection() -> None:
    assert mongo_span_name("find", {"find": "sagas", "filter": {"_id": 1}}) == "find sagas"
    assert mongo_span_name("insert", {"insert": "saga_claims"}) == "insert saga_claims"


def test_a_command_without_a_collection_is_named_by_its_operation() -> None:
    assert mongo_span_name("ping", {"ping": 1}) == "ping"
    assert mongo_span_name("endSessions", {"endSessions": [{"id": 1}]}) == "endSessions"


def test_a_command_makes_one_client_span_with_the_stable_attributes(
    traced: tuple[MongoCommandSpans, InMemorySpanExporter],
) -> None:
    listener, exporter = traced
    event = Event("update", 7, {"update": "sagas", "updates": [{"q": {"secret": "x"}}]})
    _started(listener, event)
    assert exporter.get_finished_spans() == ()
    _succeeded(listener, event)

    span = _one(exporter)
    assert span.name == "update sagas"
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {
        "db.system.name": "mongodb",
        "db.namespace": "integr8scode",
        "db.collection.name": "sagas",
        "db.operation.name": "update",
        "server.address": "127.0.0.1",
        "server.port": 27017,
    }
    assert "secret" not in repr(span.attributes)


def test_concurrent_commands_end_their_own_spans(
    traced: tuple[MongoCommandSpans, InMemorySpanExporter],
) -> None:
    listener, exporter = traced
    first, second = Event("find", 1, {"find": "a"}), Event("insert", 2, {"insert": "b"})
    other_server = Event("find", 1, {"find": "c"}, connection_id=("10.0.0.2", 27017))
    for event in (first, second, other_server):
        _started(listener, event)
    for event in (second, other_server, first):
        _succeeded(listener, event)
    assert [s.name for s in exporter.get_finished_spans()] == ["insert b", "find c", "find a"]
    assert exporter.get_finished_spans()[1].attributes == {
        **dict(exporter.get_finished_spans()[2].attributes or {}),
        "db.collection.name": "c",
        "server.address": "10.0.0.2",
    }


def test_a_failed_command_carries_the_servers_message_and_code(
    traced: tuple[MongoCommandSpans, InMemorySpanExporter],
) -> None:
    listener, exporter = traced
    event = Event("insert", 3, {"insert": "saga_claims"})
    _started(listener, event)
    event.failure = {"errmsg": "E11000 duplicate key", "codeName": "DuplicateKey", "code": 11000}
    _failed(listener, event)

    span = _one(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "E11000 duplicate key"
    assert (span.attributes or {})["error.type"] == "DuplicateKey"


def test_an_unknown_reply_is_ignored(
    traced: tuple[MongoCommandSpans, InMemorySpanExporter],
) -> None:
    listener, exporter = traced
    _succeeded(listener, Event("find", 99))
    _failed(listener, Event("find", 98))
    assert exporter.get_finished_spans() == ()


def test_no_span_under_untraced_or_when_turned_off(
    traced: tuple[MongoCommandSpans, InMemorySpanExporter],
) -> None:
    listener, exporter = traced
    with untraced():
        _started(listener, Event("find", 1, {"find": "polls"}))
    _succeeded(listener, Event("find", 1))
    listener.enabled = False
    _started(listener, Event("find", 2, {"find": "polls"}))
    _succeeded(listener, Event("find", 2))
    assert exporter.get_finished_spans() == ()


def test_a_span_that_records_nothing_is_still_ended_quietly() -> None:
    listener = MongoCommandSpans(TracerProvider(sampler=ALWAYS_OFF).get_tracer("t"))
    event = Event("find", 1, {"find": "sagas"})
    _started(listener, event)
    event.failure = {"errmsg": "boom"}
    _failed(listener, event)  # must not raise


def test_the_shape_cache_is_bounded(
    traced: tuple[MongoCommandSpans, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listener, exporter = traced
    monkeypatch.setattr("integr8scode_telemetry.mongo_spans._SHAPES_KEPT", 3)
    for i in range(10):
        event = Event("find", i, {"find": f"c{i}"})
        _started(listener, event)
        _succeeded(listener, event)
    assert len(listener._shapes) <= 3
    assert [s.name for s in exporter.get_finished_spans()] == [f"find c{i}" for i in range(10)]


def test_the_process_registers_one_listener_and_switches_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered: list[object] = []
    monkeypatch.setattr(monitoring, "register", registered.append)
    monkeypatch.setattr(MongoInstrumentation, "_listener", None)
    first, second = TracerProvider().get_tracer("a"), TracerProvider().get_tracer("b")

    listener = MongoInstrumentation().instrument(first)
    assert MongoInstrumentation().is_instrumented
    MongoInstrumentation().uninstrument()
    assert not MongoInstrumentation().is_instrumented
    again = MongoInstrumentation().instrument(second)

    assert again is listener
    assert registered == [listener]
    assert listener.tracer is second
    assert listener.enabled
