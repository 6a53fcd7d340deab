"""Mongo client spans: named ``<operation> <collection>`` with ``db.operation.name``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from integr8scode_telemetry.mongo_spans import mongo_span_name, name_mongo_span


@dataclass
class StartedEvent:
    command_name: str
    command: dict[str, Any] = field(default_factory=dict)


def test_a_command_on_a_collection_is_named_operation_then_collection() -> None:
    assert mongo_span_name("find", {"find": "sagas", "filter": {"_id": 1}}) == "find sagas"
    assert mongo_span_name("insert", {"insert": "saga_claims"}) == "insert saga_claims"


def test_a_command_without_a_collection_is_named_by_its_operation() -> None:
    assert mongo_span_name("ping", {"ping": 1}) == "ping"
    assert mongo_span_name("endSessions", {"endSessions": [{"id": 1}]}) == "endSessions"


def test_the_hook_renames_the_span_and_names_the_operation() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("integr8scode.update")
    name_mongo_span(span, StartedEvent("update", {"update": "sagas", "updates": []}))
    span.end()

    [finished] = exporter.get_finished_spans()
    assert finished.name == "update sagas"
    assert finished.attributes is not None
    assert finished.attributes["db.operation.name"] == "update"


def test_the_hook_leaves_a_span_that_records_nothing_alone() -> None:
    span = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_span("integr8scode.find")
    name_mongo_span(span, StartedEvent("find", {"find": "sagas"}))  # must not raise
    assert not span.is_recording()
