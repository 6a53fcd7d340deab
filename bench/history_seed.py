"""History for bench/history_growth.py: executions and events written straight into the running
stack's store, in the shapes the services write, every document marked so it can be removed.

Per seeded execution, as a finished run leaves them:
- ``executions`` (the api's, adapters/mongo_executions.py): completed, three status changes;
- ``execution_results`` and ``sagas`` (the coordinator's; terminal sagas only, so no
  coordinator ever takes one up again);
- ``events`` (the archiver's event store): ``execution.requested``, ``.started`` and
  ``.completed``, with the fields the archiver adds (``kafka``, ``trace``, ``stored_at``).
Events beyond three per execution are the lifecycles of further executions that live only in
the event store (as after the executions themselves were deleted), so the event types keep
their real proportions. Timestamps are spread over the 30 days before the seed.

The marker is one extra top-level field, ``bench_seed: <run id>``, on every document. The
services read documents field by field and ignore it, except replay: an event with a field its
envelope doesn't know is not a valid event, so a replay session that matches seeded events
skips them rather than publishing fake executions into the live topics.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import DeleteOne
from pymongo.asynchronous.database import AsyncDatabase

MARKER = "bench_seed"
SPAN = timedelta(days=30)
SCRIPT = "print(sum(range(10)))"
LIMITS = {"memory_mb": 128, "timeout_s": 10.0}
USAGE = {"cpu_time_ms": 18.7, "peak_memory_kb": 3424, "wall_time_ms": 51.1}
OUTPUT = {
    "stderr_bytes": 0,
    "stderr_preview": "",
    "stdout_bytes": 3,
    "stdout_preview": "45\n",
    "truncated": False,
}
BACKEND = {"service": "integr8scode-backend", "version": "0.1.0"}
COORDINATOR = {"service": "execution-coordinator", "version": "0.1.0"}
# The collections a seed writes, in the order they are filled and emptied.
COLLECTIONS = ("executions", "execution_results", "sagas", "events")


@dataclass(frozen=True)
class Execution:
    """What the documents of one seeded execution share."""

    execution_id: str
    user_id: str
    created_at: datetime
    trace_id: str

    @property
    def started_at(self) -> datetime:
        return self.created_at + timedelta(milliseconds=70)

    @property
    def finished_at(self) -> datetime:
        return self.created_at + timedelta(milliseconds=150)


def execution_doc(e: Execution, run: str) -> dict[str, Any]:
    return {
        "_id": e.execution_id,
        "user_id": e.user_id,
        "status": "completed",
        "language": "python",
        "language_version": "3.11",
        "script_length": len(SCRIPT),
        "limits": LIMITS,
        "idempotency_key": None,
        "created_at": e.created_at,
        "trace_id": e.trace_id,
        "correlation_id": e.execution_id,
        "status_history": [
            {"status": "queued", "at": e.created_at},
            {"status": "running", "at": e.started_at},
            {"status": "completed", "at": e.finished_at},
        ],
        "not_queued": False,
        "started_at": e.started_at,
        "finished_at": e.finished_at,
        "exit_code": 0,
        "resource_usage": USAGE,
        MARKER: run,
    }


def result_doc(e: Execution, run: str) -> dict[str, Any]:
    return {
        "_id": e.execution_id,
        "user_id": e.user_id,
        "status": "completed",
        "exit_code": 0,
        "signal": None,
        "error": None,
        "runner": "bubblewrap",
        "stdout": "45\n",
        "stderr": "",
        "stdout_truncated": False,
        "stderr_truncated": False,
        "resource_usage": USAGE,
        "stored_at": e.finished_at,
        MARKER: run,
    }


def _completed_payload() -> dict[str, Any]:
    return {"exit_code": 0, "output": OUTPUT, "resource_usage": USAGE}


def saga_doc(e: Execution, run: str) -> dict[str, Any]:
    terminal = _envelope(e, "execution.completed", COORDINATOR, e.finished_at, _completed_payload())
    terminal["occurred_at"] = e.finished_at.isoformat().replace("+00:00", "Z")
    return {
        "_id": e.execution_id,
        "user_id": e.user_id,
        "correlation_id": e.execution_id,
        "request": {
            "execution_id": e.execution_id,
            "correlation_id": e.execution_id,
            "user_id": e.user_id,
            "language": "python",
            "language_version": "3.11",
            "script": SCRIPT,
            "stdin": "",
            "memory_mb": LIMITS["memory_mb"],
            "timeout_s": LIMITS["timeout_s"],
        },
        "status": "completed",
        "steps": ["validate", "reserve_slot", "run", "store_result", "finish:completed"],
        "enqueued_at": e.created_at,
        "started_at": e.started_at,
        "finished_at": e.finished_at,
        "cancel_requested": False,
        "error": None,
        "owner": None,
        "lease_until": None,
        "terminal_event": terminal,
        "traceparent": f"00-{e.trace_id}-{uuid.uuid4().hex[:16]}-03",
        "tracestate": None,
        MARKER: run,
    }


def _envelope(
    e: Execution, event_type: str, producer: dict[str, str], at: datetime, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": at,
        "producer": producer,
        "correlation_id": e.execution_id,
        "execution_id": e.execution_id,
        "user_id": e.user_id,
        "payload": payload,
    }


def event_docs(e: Execution, run: str, partitions: int = 6) -> list[dict[str, Any]]:
    """The lifecycle as the archiver stores it: requested, started, completed."""
    lifecycle: list[tuple[str, dict[str, str], datetime, str, dict[str, Any]]] = [
        (
            "execution.requested",
            BACKEND,
            e.created_at,
            "execution_requests",
            {
                "language": "python",
                "language_version": "3.11",
                "limits": LIMITS,
                "script": SCRIPT,
                "stdin": "",
            },
        ),
        (
            "execution.started",
            COORDINATOR,
            e.started_at,
            "execution_events",
            {
                "queue_wait_ms": 65.2,
                "runner": "bubblewrap",
                "started_at": e.started_at.isoformat().replace("+00:00", "Z"),
            },
        ),
        (
            "execution.completed",
            COORDINATOR,
            e.finished_at,
            "execution_events",
            _completed_payload(),
        ),
    ]
    docs = []
    for offset, (event_type, producer, at, topic, payload) in enumerate(lifecycle):
        doc = _envelope(e, event_type, producer, at, payload)
        span_id = uuid.uuid4().hex[:16]
        partition = int(e.execution_id[:8], 16) % partitions
        doc["kafka"] = {"topic": topic, "partition": partition, "offset": offset}
        doc["trace"] = {
            "traceparent": f"00-{e.trace_id}-{span_id}-03",
            "tracestate": None,
            "trace_id": e.trace_id,
            "span_id": span_id,
        }
        doc["stored_at"] = at + timedelta(milliseconds=15)
        doc[MARKER] = run
        docs.append(doc)
    return docs


@dataclass(frozen=True)
class SeedPlan:
    run: str
    executions: int  # in `executions` (and results, sagas), with their events
    events: int  # in `events`, in all
    users: list[str]  # seeded user ids, round robin
    history_user: str | None  # a real user who gets `history` of the executions
    history: int
    now: datetime

    def executions_iter(self) -> Iterator[Execution]:
        """Every seeded execution, the history user's first; the ones past ``executions``
        exist only as events."""
        lifecycles = max(self.executions, -(-self.events // 3))
        step = SPAN / max(lifecycles, 1)
        for i in range(lifecycles):
            if self.history_user is not None and i < self.history:
                user = self.history_user
            else:
                user = self.users[i % len(self.users)]
            yield Execution(
                execution_id=str(uuid.uuid4()),
                user_id=user,
                created_at=self.now - SPAN + i * step,
                trace_id=uuid.uuid4().hex,
            )


def plan(
    executions: int,
    events: int,
    *,
    users: int,
    history_user: str | None,
    history: int,
    run: str | None = None,
) -> SeedPlan:
    run = run or uuid.uuid4().hex[:10]
    return SeedPlan(
        run=run,
        executions=executions,
        events=events,
        users=[f"benchseed-{run}-user-{k}" for k in range(max(users, 1))],
        history_user=history_user,
        history=min(history, executions),
        now=datetime.now(UTC),
    )


@dataclass
class SeedReport:
    counts: dict[str, int]
    seconds: float

    @property
    def documents(self) -> int:
        return sum(self.counts.values())


async def seed(
    db: AsyncDatabase[dict[str, Any]], p: SeedPlan, batch: int = 1000, concurrency: int = 2
) -> SeedReport:
    """Insert the plan in batches of ``batch`` documents per collection, ``concurrency`` batches
    in flight (FerretDB writes one SQLite database: more only queue)."""
    counts = dict.fromkeys(COLLECTIONS, 0)
    pending: dict[str, list[dict[str, Any]]] = {c: [] for c in COLLECTIONS}
    in_flight: set[asyncio.Task[None]] = set()

    async def flush(collection: str, docs: list[dict[str, Any]]) -> None:
        await db[collection].insert_many(docs, ordered=False)
        counts[collection] += len(docs)

    async def add(collection: str, docs: list[dict[str, Any]]) -> None:
        pending[collection].extend(docs)
        if len(pending[collection]) < batch:
            return
        # Backpressure: build no further ahead than the writes (and re-raise their errors).
        while len(in_flight) >= concurrency:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            in_flight.difference_update(done)
            for task in done:
                task.result()
        docs, pending[collection] = pending[collection], []
        in_flight.add(asyncio.create_task(flush(collection, docs)))

    start = time.perf_counter()
    events_left = p.events
    for n, e in enumerate(p.executions_iter()):
        if n < p.executions:
            await add("executions", [execution_doc(e, p.run)])
            await add("execution_results", [result_doc(e, p.run)])
            await add("sagas", [saga_doc(e, p.run)])
        if events_left > 0:
            lifecycle = event_docs(e, p.run)[:events_left]
            events_left -= len(lifecycle)
            await add("events", lifecycle)
    await asyncio.gather(*in_flight, *(flush(c, docs) for c, docs in pending.items() if docs))
    return SeedReport(counts, time.perf_counter() - start)


REMOVE_CHUNK = 10_000


async def remove(db: AsyncDatabase[dict[str, Any]], run: str | None) -> SeedReport:
    """Delete what seed ``run`` wrote (every seed's, with None), by ``_id`` in bulk writes of
    ``REMOVE_CHUNK``: FerretDB's PostgreSQL backend binds one parameter per document a
    ``delete_many`` removes and refuses a statement over 65 535 of them."""
    selector: dict[str, Any] = {MARKER: run} if run is not None else {MARKER: {"$exists": True}}
    start = time.perf_counter()
    counts = {}
    for collection in COLLECTIONS:
        ids = [d["_id"] async for d in db[collection].find(selector, {"_id": 1})]
        deleted = 0
        for i in range(0, len(ids), REMOVE_CHUNK):
            # One delete command of many by-_id statements: each is an index lookup (an `$in`
            # is not pushed down and would decode the collection once per chunk).
            chunk = [DeleteOne({"_id": d}) for d in ids[i : i + REMOVE_CHUNK]]
            deleted += (await db[collection].bulk_write(chunk, ordered=False)).deleted_count
        counts[collection] = deleted
    return SeedReport(counts, time.perf_counter() - start)
