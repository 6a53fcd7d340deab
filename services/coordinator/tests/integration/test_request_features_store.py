"""Issue 14 against the stack's Mongo-wire server (FerretDB on PostgreSQL, which refuses a NUL
in any string): a request with args, files and NUL-bearing stdin is queued and run, and a
binary result (bytes 0..255) is stored with its exact bytes and a verdict. The real saga with
the real Mongo stores; the sandbox and Kafka are stand-ins (not under test here)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry import trace
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tests.stack import local_stack

from integr8scode_coordinator.adapters.mongo_results import MongoResultStore
from integr8scode_coordinator.adapters.mongo_sagas import MongoSagaStore
from integr8scode_coordinator.adapters.mongo_slots import MongoSlotPool
from integr8scode_coordinator.domain.saga import ExecutionRequest, RequestFile, SagaStatus
from integr8scode_coordinator.orchestrator import ExecutionSaga, RunPolicy
from integr8scode_coordinator.sandbox import Runtime, SandboxRequest, SandboxResult, WorkFile
from integr8scode_coordinator.scheduler import Scheduler
from integr8scode_events import EventEnvelope, ProducerInfo, PublishedRecord

STACK = local_stack()
POLICY = RunPolicy(
    max_timeout_s=10,
    max_memory_mb=512,
    max_output_bytes=1 << 20,
    lease=timedelta(seconds=30),
    per_user=4,
)
BINARY = bytes(range(256))


@dataclass
class RecordingPublisher:
    events: list[EventEnvelope] = field(default_factory=list)

    async def publish(self, event: EventEnvelope) -> PublishedRecord:
        self.events.append(event)
        return PublishedRecord(topic="execution_events", partition=0, offset=len(self.events))


@dataclass
class BinaryRunner:
    """Every run writes bytes 0..255 (the text reading holds a NUL and U+FFFDs)."""

    name = "binary"
    requests: list[SandboxRequest] = field(default_factory=list)

    def runtimes(self) -> list[Runtime]:
        return [Runtime("python", ["3.11"], "3.11", script_file="main.py")]

    async def run(self, request: SandboxRequest, cancel: asyncio.Event) -> SandboxResult:
        self.requests.append(request)
        return SandboxResult(
            "completed", 0, None, BINARY.decode(errors="replace"), "", False, False, 1.0, 2.0, 3,
            None, stdout_bytes=BINARY,
        )  # fmt: skip


@pytest.fixture
async def db() -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    name = f"coordinator_features_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


async def test_a_binary_run_with_args_and_files_is_stored_exactly(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = MongoSagaStore(db["sagas"])
    await store.ensure_indexes()
    slots = MongoSlotPool(db["slots"], size=2)
    await slots.ensure_slots()
    runner, publisher = BinaryRunner(), RecordingPublisher()
    saga = ExecutionSaga(
        store=store,
        slots=slots,
        results=MongoResultStore(db["execution_results"]),
        runner=runner,
        publisher=publisher,
        producer=ProducerInfo(service="execution-coordinator", version="it"),
        policy=POLICY,
        instance_id="coordinator-features",
        tracer=trace.get_tracer("features-it"),
    )
    scheduler = Scheduler(
        saga=saga,
        store=store,
        slots=slots,
        policy=POLICY,
        local_capacity=2,
        tracer=trace.get_tracer("features-it"),
    )
    request = ExecutionRequest(
        "ex-bin", "user-f", "corr-bin", "print(1)", "python", "3.11", "in\0put", 5.0, 128,
        cpu_time_s=2.0, max_processes=8, max_output_kb=512, args=("a", "b c"),
        files=(RequestFile("d/f.txt", "x\0y"), RequestFile("blob", "AP8=", "base64")),
        expected_stdout="not this",
    )  # fmt: skip

    assert await saga.accept(request)
    await scheduler._admit()
    await scheduler.drain(grace_s=30)

    doc = await db["sagas"].find_one({"_id": "ex-bin"})
    assert doc is not None
    assert SagaStatus(doc["status"]) is SagaStatus.COMPLETED
    [sandbox] = runner.requests
    assert sandbox.stdin == b"in\0put"
    assert sandbox.files == (WorkFile("d/f.txt", b"x\0y"), WorkFile("blob", b"\x00\xff"))
    assert (sandbox.args, sandbox.limits.cpu_time_s, sandbox.limits.max_processes) == (
        ("a", "b c"),
        2.0,
        8,
    )
    result = await db["execution_results"].find_one({"_id": "ex-bin"})
    assert result is not None
    assert result["stdout_raw"] == BINARY
    assert "\0" not in result["stdout"]
    assert result["verdict"] == "wrong_answer"
