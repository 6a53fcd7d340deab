"""Admission's Mongo calls on the stack's Mongo-wire server, through the real PyMongo
instrumentation: an execution's claim is in its trace under ``saga.admit``, after
``saga.queue_wait`` and before ``saga.execution``; the admission pass and the heartbeat,
janitor and outbox passes make no span at all (on the running stack each was a one-span root
trace). The sandbox and Kafka are stand-ins; the saga, scheduler and Mongo adapters are real.
Each test has its own database, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pymongo import AsyncMongoClient
from tests.coordinator_stand_ins import InstantRunner, RecordingPublisher
from tests.stack import local_stack

from integr8scode_coordinator.adapters.mongo_results import MongoResultStore
from integr8scode_coordinator.adapters.mongo_sagas import MongoSagaStore
from integr8scode_coordinator.adapters.mongo_slots import MongoSlotPool
from integr8scode_coordinator.domain.saga import ExecutionRequest, SagaStatus
from integr8scode_coordinator.orchestrator import ExecutionSaga, RunPolicy
from integr8scode_coordinator.scheduler import Scheduler, SchedulerTiming
from integr8scode_events import ProducerInfo
from integr8scode_telemetry import TelemetrySettings, untraced
from integr8scode_telemetry.mongo_spans import MongoCommandSpans
from integr8scode_telemetry.setup import TelemetryHandle, init_telemetry

STACK = local_stack()
INSTANCE = "coordinator-it"


@dataclass
class Coordinator:
    telemetry: TelemetryHandle
    exporter: InMemorySpanExporter
    store: MongoSagaStore
    saga: ExecutionSaga
    scheduler: Scheduler

    def spans(self) -> list[ReadableSpan]:
        assert self.telemetry.force_flush()
        return list(self.exporter.get_finished_spans())


@pytest.fixture
async def coordinator() -> AsyncIterator[Coordinator]:
    exporter = InMemorySpanExporter()
    telemetry = init_telemetry(
        TelemetrySettings(),
        "coordinator-it",
        "0",
        set_global=False,
        instrument_libraries=False,
        span_exporter=exporter,
    )
    # PyMongo's instrumentation reports to the first provider that ever instrumented this
    # process (other tests' services too): this client gets a listener of its own instead.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url,
        serverSelectionTimeoutMS=5000,
        event_listeners=[MongoCommandSpans(telemetry.tracer_provider.get_tracer("pymongo-it"))],
        tz_aware=True,
    )
    db = client[f"coordinator_spans_{uuid.uuid4().hex[:12]}"]
    store, slots = MongoSagaStore(db["sagas"]), MongoSlotPool(db["slots"], size=2)
    policy = RunPolicy(
        max_timeout_s=10,
        max_memory_mb=256,
        max_output_bytes=65536,
        lease=timedelta(seconds=30),
        per_user=2,
        store_retry_s=1,
    )
    tracer = telemetry.tracer_provider.get_tracer("coordinator-it")
    saga = ExecutionSaga(
        store=store,
        slots=slots,
        results=MongoResultStore(db["execution_results"]),
        runner=InstantRunner(),
        publisher=RecordingPublisher(),
        producer=ProducerInfo(service="execution-coordinator", version="it"),
        policy=policy,
        instance_id=INSTANCE,
        tracer=tracer,
    )
    scheduler = Scheduler(
        saga=saga,
        store=store,
        slots=slots,
        policy=policy,
        local_capacity=2,
        tracer=tracer,
        timing=SchedulerTiming(outbox_delay_s=0),
    )
    try:
        with untraced():
            await store.ensure_indexes()
            await slots.ensure_slots()
        yield Coordinator(telemetry, exporter, store, saga, scheduler)
    finally:
        with untraced():
            await client.drop_database(db.name)
            await client.close()
        telemetry.shutdown()


def _collection(span: ReadableSpan) -> str | None:
    attributes = span.attributes or {}
    value = attributes.get("db.collection.name") or attributes.get("db.mongodb.collection")
    return str(value) if value else None


async def test_admission_is_in_the_trace_and_the_passes_make_no_spans(
    coordinator: Coordinator,
) -> None:
    request = ExecutionRequest(
        execution_id=f"ex-{uuid.uuid4().hex[:8]}",
        user_id="user-it",
        correlation_id="corr-it",
        script="print(sum(range(10)))",
        language="python",
        language_version="3.11",
        stdin="",
        timeout_s=5,
        memory_mb=128,
    )
    tracer = coordinator.telemetry.tracer_provider.get_tracer("coordinator-it")
    with tracer.start_as_current_span("kafka.consume", kind=SpanKind.CONSUMER) as consume:
        assert await coordinator.saga.accept(request)
    consume_context = consume.get_span_context()

    await coordinator.scheduler._admit()
    await coordinator.scheduler.drain(grace_s=10)
    with untraced():  # the test's own read
        saga = await coordinator.store.get(request.execution_id)
    assert saga is not None
    assert saga.status is SagaStatus.COMPLETED
    spans = coordinator.spans()

    roots = [s.name for s in spans if s.parent is None]
    assert roots == ["kafka.consume"], [
        (s.name, _collection(s), dict(s.attributes or {}).get("db.statement"))
        for s in spans
        if s.parent is None
    ]
    assert {s.context.trace_id for s in spans if s.context} == {consume_context.trace_id}
    by_name = {s.name: s for s in spans}
    wait, admit, execution = (
        by_name[n] for n in ("saga.queue_wait", "saga.admit", "saga.execution")
    )
    for span in (wait, admit, execution):
        assert span.parent is not None
        assert span.parent.span_id == consume_context.span_id
    assert admit.context is not None
    under_admit = {
        _collection(s) for s in spans if s.parent and s.parent.span_id == admit.context.span_id
    }
    # The claim and the queue entry it takes (findAndModify) are the admission's own work.
    assert {"saga_claims", "saga_queue"} <= under_admit, under_admit
    # The pass's reads (the queue, the slots held per user) are nowhere.
    reads = {s.name for s in spans if s.name.startswith("find ")}
    assert not reads & {"find saga_queue", "find slots", "find sagas"}, reads

    coordinator.exporter.clear()
    await coordinator.scheduler._heartbeat()
    await coordinator.scheduler._janitor()
    await coordinator.scheduler._outbox()
    await coordinator.scheduler._admit()
    assert coordinator.spans() == []
