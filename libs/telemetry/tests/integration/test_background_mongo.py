"""background.py against the real PyMongo instrumentation and the stack's Mongo-wire server:
a command under ``untraced()`` makes no span, one under ``resume_trace`` is a child of the
stored context, and outside both it is traced as before (so the suppression is what hides
the first)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo import AsyncMongoClient
from tests.stack import local_stack

from integr8scode_telemetry import TelemetrySettings, resume_trace, untraced
from integr8scode_telemetry.mongo_spans import MongoCommandSpans
from integr8scode_telemetry.setup import TelemetryHandle, init_telemetry

STACK = local_stack()


@pytest.fixture
def telemetry() -> Iterator[tuple[TelemetryHandle, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    handle = init_telemetry(
        TelemetrySettings(),
        "background-it",
        "0",
        set_global=False,
        instrument_libraries=False,
        span_exporter=exporter,
    )
    try:
        yield handle, exporter
    finally:
        handle.shutdown()


async def test_untraced_commands_make_no_span_and_resumed_ones_join_the_stored_trace(
    telemetry: tuple[TelemetryHandle, InMemorySpanExporter],
) -> None:
    handle, exporter = telemetry
    # PyMongo's instrumentation reports to the first provider that ever instrumented this
    # process (other tests' services too): this client gets a listener of its own instead.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url,
        serverSelectionTimeoutMS=5000,
        event_listeners=[MongoCommandSpans(handle.tracer_provider.get_tracer("pymongo-it"))],
    )
    collection = client[f"it_background_{uuid.uuid4().hex[:8]}"]["polls"]
    try:
        with handle.tracer.start_as_current_span("kafka.consume") as consume:
            pass
        assert handle.force_flush()
        exporter.clear()

        with untraced():
            await collection.find_one({"_id": "poll"})
            with resume_trace(consume.get_span_context()) as resumed:
                assert resumed
                await collection.insert_one({"_id": "work"})
            await collection.find_one({"_id": "poll-again"})
        await collection.delete_one({"_id": "work"})  # not background: traced, its own root
        assert handle.force_flush()
        spans = exporter.get_finished_spans()
    finally:
        await client.drop_database(collection.database.name)
        await client.close()

    assert len(spans) == 2, [s.name for s in spans]
    insert, delete = spans
    assert "insert" in insert.name
    assert insert.parent is not None
    assert insert.parent.span_id == consume.get_span_context().span_id
    assert insert.context is not None
    assert insert.context.trace_id == consume.get_span_context().trace_id
    assert "delete" in delete.name
    assert delete.parent is None
