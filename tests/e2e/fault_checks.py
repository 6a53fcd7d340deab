"""The fault suite's cross-checks from below the API: what Kafka carried and what the databases
hold for a set of executions, so "exactly one terminal status, run once" is not taken from the
api's own record alone.

- Kafka (``execution_events``, read between two sets of end offsets): one distinct terminal event
  per execution, of the type matching its status; at most one distinct ``execution.started``.
  Redelivered copies of one event (same ``event_id``) are at-least-once working as designed.
- The event store (event-replay's ``events``): every terminal execution's terminal event archived.
- The coordinator's ``sagas``: the saga ended in the same status, its ``run`` step taken at most
  once (the step is recorded before the sandbox starts, so two runs would show two).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from integr8scode_events import decode_event
from integr8scode_events.topics import EXECUTION_EVENTS, TopicSpec
from integr8scode_mongo import MongoSettings
from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()
Offsets = dict[TopicPartition, int]


TERMINAL_TYPES = frozenset(
    {"execution.completed", "execution.failed", "execution.timed_out", "execution.cancelled"}
)


def terminal_event_type(status: str) -> str:
    return f"execution.{status}"


@asynccontextmanager
async def _consumer() -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(bootstrap_servers=STACK.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def end_offsets(topic: TopicSpec = EXECUTION_EVENTS) -> Offsets:
    """Where each partition of ``topic`` (``execution_events`` by default) ends now."""
    async with _consumer() as consumer:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        ends: Offsets = await consumer.end_offsets(partitions)
        return ends


async def records_between(start: Offsets, end: Offsets, timeout_s: float = 30) -> list[Any]:
    """Every record of the partitions in ``end`` from ``start`` (0 where absent) up to ``end``."""
    async with _consumer() as consumer:
        consumer.assign(list(end))
        for partition in end:
            consumer.seek(partition, start.get(partition, 0))
        records: list[Any] = []

        async def read_to_end() -> bool:
            batch = await consumer.getmany(timeout_ms=300)
            for partition, found in batch.items():
                records.extend(r for r in found if r.offset < end[partition])
            positions = {p: await consumer.position(p) for p in end}
            return all(positions[p] >= end[p] for p in end)

        await eventually(read_to_end, timeout_s=timeout_s, what="the topic read to the end")
        return records


async def read_between(start: Offsets, end: Offsets, timeout_s: float = 30) -> list[Any]:
    """The events of ``records_between``, decoded."""
    return [decode_event(r.value) for r in await records_between(start, end, timeout_s)]


def kafka_story(events: list[Any], statuses: Mapping[str, str]) -> dict[str, str]:
    """Why what Kafka carried for each execution breaks the invariant (execution id → reason)."""
    terminal_ids: dict[str, set[tuple[str, str]]] = defaultdict(set)
    started_ids: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.execution_id not in statuses:
            continue
        if event.event_type == "execution.started":
            started_ids[event.execution_id].add(event.event_id)
        elif event.event_type in TERMINAL_TYPES:
            terminal_ids[event.execution_id].add((event.event_type, event.event_id))
    broken: dict[str, str] = {}
    for execution_id, status in statuses.items():
        terminals = terminal_ids.get(execution_id, set())
        if [t for t, _ in terminals] != [terminal_event_type(status)]:
            broken[execution_id] = f"status {status}, terminal events on Kafka: {sorted(terminals)}"
        elif len(started_ids.get(execution_id, ())) > 1:
            broken[execution_id] = f"started {len(started_ids[execution_id])} times on Kafka"
    return broken


@asynccontextmanager
async def _database() -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(STACK.mongo_url, tz_aware=True)
    try:
        yield client[MongoSettings().database]
    finally:
        await client.close()


async def event_store_story(statuses: Mapping[str, str], timeout_s: float = 60) -> None:
    """Wait until the event store holds each execution's terminal event (and only that one)."""
    async with _database() as db:
        ids = list(statuses)

        async def archived() -> bool:
            found: dict[str, set[tuple[str, str]]] = defaultdict(set)
            query = {"execution_id": {"$in": ids}, "event_type": {"$in": sorted(TERMINAL_TYPES)}}
            projection = {"execution_id": 1, "event_type": 1, "event_id": 1}
            async for doc in db["events"].find(query, projection):
                found[doc["execution_id"]].add((doc["event_type"], doc["event_id"]))
            missing = {
                eid: f"status {status}, archived terminal events {sorted(found.get(eid, ()))}"
                for eid, status in statuses.items()
                if [t for t, _ in found.get(eid, ())] != [terminal_event_type(status)]
            }
            if missing:  # eventually() reports the last one at its deadline
                raise AssertionError(missing)
            return True

        await eventually(
            archived, timeout_s=timeout_s, interval_s=1, what="every terminal event archived"
        )


async def saga_story(statuses: Mapping[str, str]) -> dict[str, str]:
    """Why the coordinator's record of each execution breaks the invariant."""
    async with _database() as db:
        sagas = {
            doc["_id"]: doc
            async for doc in db["sagas"].find(
                {"_id": {"$in": list(statuses)}}, {"status": 1, "steps": 1}
            )
        }
    broken: dict[str, str] = {}
    for execution_id, status in statuses.items():
        saga = sagas.get(execution_id)
        if saga is None:
            broken[execution_id] = "no saga"
        elif saga["status"] != status:
            broken[execution_id] = f"saga ended {saga['status']}, the api says {status}"
        elif saga.get("steps", []).count("run") > 1:
            broken[execution_id] = f"ran more than once: steps {saga['steps']}"
    return broken
