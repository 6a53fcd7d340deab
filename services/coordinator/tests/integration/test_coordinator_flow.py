"""The running coordinator of the local stack, driven through Kafka and observed in Mongo.

Requests go to ``execution_requests`` as the API would publish them; the sagas and results the
coordinator writes (database ``integr8scode``) are polled until they end. Each test uses users
of its own, so the per-user cap it sees is its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_events import ExecutionCancelRequested, ExecutionRequested, ProducerInfo
from integr8scode_events.kafka import EventPublisher, KafkaSettings
from integr8scode_events.payloads import (
    ExecutionCancelRequestedPayload,
    ExecutionFile,
    ExecutionLimits,
    ExecutionRequestedPayload,
)

STACK = local_stack()
PRODUCER = ProducerInfo(service="coordinator-flow-it", version="0")
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}
SUM_OF_RANGE = {
    "python": "print(sum(range(10)))",
    "javascript": "console.log([...Array(10).keys()].reduce((a, b) => a + b, 0))",
    "bash": "s=0; for i in 0 1 2 3 4 5 6 7 8 9; do s=$((s + i)); done; echo $s",
}
# The cap the running coordinator applies (its setting, with the same default).
PER_USER = int(os.environ.get("COORDINATOR_PER_USER_SLOTS", "4"))


@pytest.fixture
async def coordinator_db() -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    async with httpx.AsyncClient() as http:
        url = STACK.services["execution-coordinator"]
        ready = await http.get(f"{url}/health/ready", timeout=5)
        assert ready.status_code == 200, f"the coordinator at {url} is not ready: {ready.text}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    try:
        yield client[os.environ.get("MONGO_DATABASE", "integr8scode")]
    finally:
        await client.close()


@pytest.fixture
async def publisher() -> AsyncIterator[EventPublisher]:
    settings = KafkaSettings(bootstrap_servers=STACK.kafka_bootstrap)
    async with EventPublisher(settings, "coordinator-flow-it") as pub:
        yield pub


async def _versions(db: AsyncDatabase[dict[str, Any]]) -> dict[str, str]:
    """language → the default version the coordinator advertises."""
    return {d["_id"]: d["default_version"] async for d in db["runtimes"].find({})}


async def _request(
    publisher: EventPublisher,
    user_id: str,
    script: str,
    *,
    language: str = "python",
    version: str = "3.11",
    timeout_s: float = 10.0,
) -> str:
    execution_id = f"flow-{uuid.uuid4().hex[:12]}"
    await publisher.publish(
        ExecutionRequested(
            producer=PRODUCER,
            correlation_id=f"corr-{execution_id}",
            execution_id=execution_id,
            user_id=user_id,
            payload=ExecutionRequestedPayload(
                script=script,
                language=language,
                language_version=version,
                limits=ExecutionLimits(timeout_s=timeout_s, memory_mb=128),
            ),
        )
    )
    return execution_id


async def _sagas(
    db: AsyncDatabase[dict[str, Any]], ids: list[str], statuses: set[str], timeout_s: float = 60
) -> dict[str, dict[str, Any]]:
    """The saga documents of ``ids`` once every one of them has a status in ``statuses`` (and,
    for a terminal status, its terminal event was published and its outbox entry deleted: the
    coordinator is done with it)."""

    def reached_one(doc: dict[str, Any], unpublished: set[str]) -> bool:
        if doc["status"] not in statuses:
            return False
        return doc["status"] not in TERMINAL or doc["_id"] not in unpublished

    async def reached() -> dict[str, dict[str, Any]] | None:
        docs = {d["_id"]: d async for d in db["sagas"].find({"_id": {"$in": ids}})}
        # Published = its outbox entry gone (deleted with the coordinator's next batch).
        unpublished = {d["_id"] async for d in db["saga_outbox"].find({}, {"_id": 1})}
        done = len(docs) == len(ids) and all(reached_one(d, unpublished) for d in docs.values())
        return docs if done else None

    return await eventually(
        reached, timeout_s=timeout_s, interval_s=0.2, what=f"{len(ids)} sagas in {statuses}"
    )


async def _results(db: AsyncDatabase[dict[str, Any]], ids: list[str]) -> dict[str, Any]:
    return {d["_id"]: d async for d in db["execution_results"].find({"_id": {"$in": ids}})}


def _max_overlap(sagas: list[dict[str, Any]]) -> int:
    """How many of these runs were running at the same moment, at most."""
    edges: list[tuple[datetime, int]] = []
    for saga in sagas:
        edges += [(saga["started_at"], 1), (saga["finished_at"], -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


async def test_each_language_runs_to_completion(
    coordinator_db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher
) -> None:
    user = f"flow-user-{uuid.uuid4().hex[:8]}"
    versions = await _versions(coordinator_db)
    assert set(SUM_OF_RANGE) <= set(versions)
    ids = {
        language: await _request(
            publisher, user, script, language=language, version=versions[language]
        )
        for language, script in SUM_OF_RANGE.items()
    }

    sagas = await _sagas(coordinator_db, list(ids.values()), TERMINAL)

    results = await _results(coordinator_db, list(ids.values()))
    for language, execution_id in ids.items():
        saga, result = sagas[execution_id], results[execution_id]
        assert saga["status"] == "completed", (language, saga.get("error"), result.get("stderr"))
        assert saga["steps"][0] == "validate"
        assert saga["steps"][-1] == "finish:completed"
        assert (result["stdout"], result["exit_code"]) == ("45\n", 0), language
        assert result["resource_usage"]["wall_time_ms"] > 0


async def test_a_user_over_the_cap_is_queued_and_drains(
    coordinator_db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher
) -> None:
    user = f"flow-heavy-{uuid.uuid4().hex[:8]}"
    script = "import time\ntime.sleep(1.5)\nprint(sum(range(10)))"
    ids = [await _request(publisher, user, script) for _ in range(PER_USER + 3)]

    sagas = await _sagas(coordinator_db, ids, TERMINAL, timeout_s=90)

    assert {s["status"] for s in sagas.values()} == {"completed"}
    assert _max_overlap(list(sagas.values())) <= PER_USER
    results = await _results(coordinator_db, ids)
    assert {r["stdout"] for r in results.values()} == {"45\n"}


async def test_a_running_execution_is_cancelled_on_request(
    coordinator_db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher
) -> None:
    user = f"flow-cancel-{uuid.uuid4().hex[:8]}"
    execution_id = await _request(
        publisher, user, "import time\ntime.sleep(25)\nprint('not cancelled')", timeout_s=30
    )
    await _sagas(coordinator_db, [execution_id], {"running"}, timeout_s=30)

    await publisher.publish(
        ExecutionCancelRequested(
            producer=PRODUCER,
            correlation_id=f"corr-{execution_id}",
            execution_id=execution_id,
            user_id=user,
            payload=ExecutionCancelRequestedPayload(requested_by=user),
        )
    )

    sagas = await _sagas(coordinator_db, [execution_id], TERMINAL, timeout_s=20)
    saga = sagas[execution_id]
    assert saga["status"] == "cancelled", saga.get("error")
    assert saga["cancel_requested"] is True
    assert saga["terminal_event"]["payload"]["was_running"] is True
    result = (await _results(coordinator_db, [execution_id]))[execution_id]
    assert result["status"] == "cancelled"
    assert "not cancelled" not in result["stdout"]
    assert (saga["finished_at"] - saga["started_at"]).total_seconds() < 20


async def _request_with(
    publisher: EventPublisher, user_id: str, version: str, **fields: Any
) -> str:
    """An ``execution.requested`` with issue 14's fields, as a producer other than the API
    (which refuses bad ones at its edge) could send it."""
    execution_id = f"flow-{uuid.uuid4().hex[:12]}"
    await publisher.publish(
        ExecutionRequested(
            producer=PRODUCER,
            correlation_id=f"corr-{execution_id}",
            execution_id=execution_id,
            user_id=user_id,
            payload=ExecutionRequestedPayload(
                script=fields.pop("script", "print(open('in.txt').read())"),
                language="python",
                language_version=version,
                limits=ExecutionLimits(timeout_s=10.0, memory_mb=128),
                **fields,
            ),
        )
    )
    return execution_id


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../../../tmp/escaped", "leaves the working directory"),
        ("/etc/escaped", "is an absolute path"),
        ("main.py", "clashes with the script's own file"),
    ],
)
async def test_a_file_name_the_api_would_refuse_is_refused_again_from_an_event(
    coordinator_db: AsyncDatabase[dict[str, Any]],
    publisher: EventPublisher,
    name: str,
    reason: str,
) -> None:
    """Defence in depth (issue 14): an event that never went through the API's edge."""
    version = (await _versions(coordinator_db))["python"]
    execution_id = await _request_with(
        publisher,
        f"flow-files-{uuid.uuid4().hex[:8]}",
        version,
        files=(ExecutionFile(name=name, content="x"),),
    )
    saga = (await _sagas(coordinator_db, [execution_id], TERMINAL))[execution_id]
    assert saga["status"] == "failed"
    assert reason in saga["error"]
    assert saga["steps"] == ["validate", "finish:failed"]  # it never ran
    assert await _results(coordinator_db, [execution_id]) == {}


async def test_args_files_and_the_verdict_through_the_running_coordinator(
    coordinator_db: AsyncDatabase[dict[str, Any]], publisher: EventPublisher
) -> None:
    version = (await _versions(coordinator_db))["python"]
    execution_id = await _request_with(
        publisher,
        f"flow-args-{uuid.uuid4().hex[:8]}",
        version,
        script="import sys\nprint(open(sys.argv[1]).read().strip(), *sys.argv[2:])",
        args=("in.txt", "b"),
        files=(ExecutionFile(name="in.txt", content="YQ==", encoding="base64"),),
        expected_stdout="a b",
    )
    saga = (await _sagas(coordinator_db, [execution_id], TERMINAL))[execution_id]
    assert saga["status"] == "completed", saga.get("error")
    result = (await _results(coordinator_db, [execution_id]))[execution_id]
    assert (result["stdout"], result["verdict"]) == ("a b\n", "accepted")
