"""Replay and archiving through the running event-replay service, and what their time is made of.

    uv run python bench/replay_throughput.py --max-events 2000 --burst 2000

Needs the native local stack (`make up`) with some history in the event store (the e2e tests
or bench/execute_roundtrip.py leave thousands of lifecycle events). In one run it measures:
1. the store queries a session makes, straight on the Mongo-wire server (FerretDB locally
   scans the whole `events` collection for each): the count at creation, the first page and
   a page after a cursor half-way (`REPLAY_BATCH_SIZE` events);
2. a dry run through the admin API for the same filters (count + preview, nothing published);
3. a session at speed "max" into a fresh test topic (created here, deleted after; event-replay
   is then restarted with the environment it had, or its producer would re-create the topic
   through the broker's auto-creation at its next metadata refresh): events/s
   and wall time (server `started_at` → `finished_at`, and as the client saw it), the share
   of that time its page queries account for, and the messages found on the topic;
4. the ceiling of publishing one message at a time, as a paced session (or a window of 1,
   `REPLAY_PUBLISH_WINDOW`) does (EventPublisher, each send waiting for its acknowledgement),
   into the same topic; a session at speed max keeps a window of them in flight and can pass it;
5. the archiver's lag: a burst of N `notification.sent` events (nobody but the archiver
   consumes `notification_events`) published with EventPublisher; the time until the
   archiver's group committed past all of them (it commits after the batch is stored) and
   until all are in `events` (counted by event id; the count's own duration is the
   resolution); events/s. The burst's documents are deleted from `events` afterwards, so
   the store (and every later scan) does not grow with bench data.
Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from admin_login import admin_headers
from integr8scode_event_replay.adapters.mongo_events import ORDER, events_query
from integr8scode_event_replay.domain.sessions import Cursor
from integr8scode_event_replay.domain.spec import ReplayFilters
from integr8scode_events import NotificationSent
from integr8scode_events.envelope import ProducerInfo
from integr8scode_events.kafka import EventPublisher, KafkaSettings
from integr8scode_events.payloads import NotificationPayload
from integr8scode_events.topics import NOTIFICATION_EVENTS
from integr8scode_mongo import MongoSettings

ROOT = Path(__file__).resolve().parents[1]
API = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
REPLAY = f"http://127.0.0.1:{os.environ.get('REPLAY_PORT', '8003')}"
BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
RUN_DIR = Path(os.environ.get("INTEGR8SCODE_RUN", ROOT / ".local"))
ARCHIVER_GROUP = "event-replay-archiver"
LIFECYCLE = [
    "execution.started",
    "execution.completed",
    "execution.failed",
    "execution.timed_out",
    "execution.cancelled",
]
SESSIONS = "/api/v1/replay/sessions"
PARTITIONS = 3  # of the test topic
T = TypeVar("T")


async def _timed(call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await call()
    return result, time.perf_counter() - start


def _batch_size() -> int:
    """``REPLAY_BATCH_SIZE`` as the running service has it (its environment, read from /proc
    through its pid file, only that variable), else the default of its settings."""
    from integr8scode_event_replay.config import ReplaySettings  # noqa: PLC0415

    try:
        pid = (RUN_DIR / "pids" / "svc-event-replay.pid").read_text().strip()
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            key, _, value = entry.decode(errors="replace").partition("=")
            if key == "REPLAY_BATCH_SIZE":
                return int(value)
    except OSError:
        pass
    default: int = ReplaySettings.model_fields["batch_size"].default
    return default


@dataclass
class QueryCost:
    stored: int
    matched: int
    count_s: float
    first_page_s: float
    later_page_s: float


async def query_cost(
    mongo: AsyncMongoClient[dict[str, Any]], filters: ReplayFilters, batch: int, reps: int
) -> QueryCost:
    events = mongo[MongoSettings().database]["events"]
    counts, firsts, laters = [], [], []
    matched = 0
    for _ in range(reps):
        matched, seconds = await _timed(lambda: events.count_documents(events_query(filters)))
        counts.append(seconds)
        _, seconds = await _timed(
            lambda: events.find(events_query(filters)).sort(ORDER).limit(batch).to_list()
        )
        firsts.append(seconds)
    middle = (
        await events.find(events_query(filters)).sort(ORDER).skip(matched // 2).limit(1).to_list()
    )
    if middle:
        cursor = Cursor(middle[0]["occurred_at"], middle[0]["event_id"])
        for _ in range(reps):
            _, seconds = await _timed(
                lambda: (
                    events.find(events_query(filters, cursor)).sort(ORDER).limit(batch).to_list()
                )
            )
            laters.append(seconds)
    return QueryCost(
        stored=await events.estimated_document_count(),
        matched=matched,
        count_s=statistics.median(counts),
        first_page_s=statistics.median(firsts),
        later_page_s=statistics.median(laters or firsts),
    )


@dataclass
class Session:
    body: dict[str, Any]
    create_s: float  # the POST (the count, and for a dry run the preview)
    client_s: float  # POST sent → terminal status read

    @property
    def server_s(self) -> float:
        started, finished = self.body.get("started_at"), self.body.get("finished_at")
        if not started or not finished:
            return float("nan")
        return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


async def run_session(
    http: httpx.AsyncClient, admin: dict[str, str], request: dict[str, Any], wait_s: float
) -> Session:
    start = time.perf_counter()
    created = await http.post(f"{REPLAY}{SESSIONS}", json=request, headers=admin)
    create_s = time.perf_counter() - start
    created.raise_for_status()
    body: dict[str, Any] = created.json()
    deadline = time.monotonic() + wait_s
    while body["status"] in {"created", "running"} and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        response = await http.get(f"{REPLAY}{SESSIONS}/{body['id']}", headers=admin)
        response.raise_for_status()
        body = response.json()
    return Session(body, create_s, time.perf_counter() - start)


def _replay_environment() -> dict[str, str] | None:
    """The running event-replay's environment, to start it again exactly as it was."""
    try:
        pid = (RUN_DIR / "pids" / "svc-event-replay.pid").read_text().strip()
        entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    pairs = (e.decode(errors="surrogateescape").partition("=") for e in entries if e)
    return {key: value for key, _, value in pairs}


def _restart_replay(env: dict[str, str]) -> None:
    services = ROOT / "deploy" / "local" / "components" / "services.sh"
    subprocess.run(["bash", str(services), "stop", "event-replay"], check=True, env=env)
    subprocess.run(["bash", str(services), "start", "event-replay"], check=True, env=env)


async def delete_topic(admin: AIOKafkaAdminClient, topic: str, restart: bool) -> str:
    """Delete the test topic. The service's producer keeps every topic it published to in its
    metadata and refreshes it every few minutes, and the local broker auto-creates topics: the
    topic would come back. With ``restart`` event-replay is restarted (with the environment it
    had) after the deletion, and the topic deleted again if it came back meanwhile."""
    await admin.delete_topics([topic])
    if not restart:
        return "deleted (event-replay will re-create it at its next metadata refresh)"
    env = _replay_environment()
    if env is None:
        return "deleted; event-replay not running natively here, not restarted"
    await asyncio.to_thread(_restart_replay, env)
    if topic in await admin.list_topics():
        await admin.delete_topics([topic])
    return "deleted, event-replay restarted so that it stays deleted"


async def _messages_on(topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(assigned)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def sequential_publish(topic: str, messages: int) -> float:
    """Messages/s publishing one at a time, each waiting for its acknowledgement."""
    event = _burst_event("sequential")
    async with EventPublisher(KafkaSettings(bootstrap_servers=BOOTSTRAP), "bench") as publisher:
        await publisher.publish(event, topic=topic)  # connected and warm
        start = time.perf_counter()
        for _ in range(messages):
            await publisher.publish(event, topic=topic)
        return messages / (time.perf_counter() - start)


def _burst_event(run: str) -> NotificationSent:
    return NotificationSent(
        producer=ProducerInfo(service="bench", version="0"),
        correlation_id=f"bench-archiver-{run}",
        execution_id=f"bench-{uuid.uuid4().hex}",
        user_id="bench",
        payload=NotificationPayload(
            notification_id=uuid.uuid4().hex,
            channel="webhook",
            execution_status="completed",
            attempts=1,
            status_code=200,
        ),
    )


@dataclass
class ArchiverLag:
    events: int
    publish_s: float
    committed_s: float
    # The count by event id that first found all of them ran from ... to ... (seconds after the
    # burst began): each count scans the collection, so that is the resolution.
    counted_from_s: float
    counted_by_s: float


async def archiver_lag(
    mongo: AsyncMongoClient[dict[str, Any]], n: int, concurrency: int, wait_s: float, keep: bool
) -> ArchiverLag:
    events = mongo[MongoSettings().database]["events"]
    run = uuid.uuid4().hex[:8]
    burst = [_burst_event(run) for _ in range(n)]
    ids = [str(e.event_id) for e in burst]
    semaphore = asyncio.Semaphore(concurrency)
    ends: dict[int, int] = {}
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        async with EventPublisher(KafkaSettings(bootstrap_servers=BOOTSTRAP), "bench") as pub:

            async def one(event: NotificationSent) -> None:
                async with semaphore:
                    record = await pub.publish(event)
                ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)

            start = time.perf_counter()
            await asyncio.gather(*(one(e) for e in burst))
            publish_s = time.perf_counter() - start

        async def committed() -> float:
            while time.perf_counter() - start < wait_s:
                offsets = await admin.list_consumer_group_offsets(ARCHIVER_GROUP)
                done = {
                    tp.partition: meta.offset
                    for tp, meta in offsets.items()
                    if tp.topic == NOTIFICATION_EVENTS.name
                }
                if all(done.get(p, -1) >= end for p, end in ends.items()):
                    return time.perf_counter() - start
                await asyncio.sleep(0.02)
            return float("nan")

        async def stored() -> tuple[float, float]:
            """When the first count that found them all started, and when it returned."""
            while time.perf_counter() - start < wait_s:
                began = time.perf_counter() - start
                found = await events.count_documents({"event_id": {"$in": ids}})
                if found >= n:
                    return began, time.perf_counter() - start
            return float("nan"), float("nan")

        committed_s, (counted_from, counted_by) = await asyncio.gather(committed(), stored())
    finally:
        await admin.close()
        if not keep:
            await events.delete_many({"event_id": {"$in": ids}})
    return ArchiverLag(n, publish_s, committed_s, counted_from, counted_by)


@dataclass
class Results:
    event_types: list[str]
    batch: int
    cost: QueryCost
    dry: Session
    real: Session
    topic: str
    on_topic: int
    cleanup: str
    sequential: float | None
    lag: ArchiverLag | None


def report(r: Results) -> None:
    s, cost = r.real.body, r.cost
    pages = math.ceil(s["planned"] / r.batch) if s["planned"] else 0
    query_s = cost.count_s + pages * cost.later_page_s
    print(f"\nreplay — {os.cpu_count()} cores, event types {' '.join(r.event_types)}")
    print(
        f"store: {cost.stored} events; the filters match {cost.matched}. Straight on the "
        f"Mongo-wire server: count {cost.count_s * 1000:.0f} ms, first page of {r.batch} "
        f"{cost.first_page_s * 1000:.0f} ms, page after a cursor {cost.later_page_s * 1000:.0f} ms"
    )
    print(
        f"dry run (API): {r.dry.create_s * 1000:.0f} ms — matched {r.dry.body['matched']}, "
        f"planned {r.dry.body['planned']}, status {r.dry.body['status']}"
    )
    print(
        f"session, speed max, into {r.topic}: {s['status']}, published {s['published']} of "
        f"{s['planned']} (skipped {s['skipped']}, failed {s['failed']}); {r.on_topic} on the "
        f"topic; the topic {r.cleanup}"
    )
    print(
        f"  {s['published'] / r.real.server_s:.0f} events/s over {r.real.server_s:.1f} s "
        f"(started_at → finished_at); client: POST {r.real.create_s * 1000:.0f} ms, "
        f"POST → completed seen {r.real.client_s:.1f} s"
    )
    print(
        f"  its store queries (count + {pages} pages) ≈ {query_s:.1f} s = "
        f"{query_s / r.real.client_s:.0%} of the client-side time"
    )
    if r.sequential is not None:
        publish_s = s["published"] / r.sequential
        print(
            f"one-at-a-time publish ceiling (EventPublisher, no tracing): {r.sequential:.0f}/s; "
            f"its {s['published']} publishes at that rate ≈ {publish_s:.1f} s = "
            f"{publish_s / r.real.client_s:.0%} of the client-side time"
        )
    if r.lag is not None:
        lag = r.lag
        print(
            f"archiver: {lag.events} events published in {lag.publish_s:.2f} s "
            f"({lag.events / lag.publish_s:.0f}/s); group committed past them after "
            f"{lag.committed_s:.2f} s ({lag.events / lag.committed_s:.0f} events/s)"
        )
        print(
            f"  all {lag.events} counted in `events` by the count by id that ran from "
            f"{lag.counted_from_s:.2f} s to {lag.counted_by_s:.2f} s after the burst began"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--event-types", nargs="+", default=LIFECYCLE)
    parser.add_argument("--max-events", type=int, default=2000)
    parser.add_argument(
        "--occurred-from",
        type=datetime.fromisoformat,
        help="ISO time: only events from then on (e.g. real events after a history seed)",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each direct query")
    parser.add_argument("--sequential", type=int, default=500, help="0: skip step 4")
    parser.add_argument("--burst", type=int, default=2000, help="0: skip step 5")
    parser.add_argument("--concurrency", type=int, default=256, help="publishing the burst")
    parser.add_argument("--wait", type=float, default=90.0)
    parser.add_argument("--keep-burst", action="store_true", help="leave the burst in `events`")
    parser.add_argument(
        "--keep-replay-running",
        action="store_true",
        help="don't restart event-replay after deleting the test topic (it then comes back)",
    )
    args = parser.parse_args()
    filters = ReplayFilters(event_types=tuple(args.event_types), occurred_from=args.occurred_from)
    batch = _batch_size()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        MongoSettings().url, tz_aware=True, connect=False
    )
    topic = f"bench-replay-{uuid.uuid4().hex[:8]}"
    kafka_admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await kafka_admin.start()
    created = False
    try:
        cost = await query_cost(mongo, filters, batch, args.reps)
        async with httpx.AsyncClient(timeout=60) as http:
            admin = await admin_headers(http, API)
            wanted: dict[str, Any] = {"event_types": args.event_types}
            if args.occurred_from is not None:
                wanted["occurred_from"] = args.occurred_from.isoformat()
            request: dict[str, Any] = {
                "filters": wanted,
                "speed": "max",
                "max_events": args.max_events,
            }
            dry = await run_session(http, admin, {**request, "dry_run": True}, args.wait)
            await kafka_admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
            created = True
            request["target"] = {"kind": "topic", "topic": topic}
            real = await run_session(http, admin, request, args.wait)
        on_topic = await _messages_on(topic, PARTITIONS)
        sequential = await sequential_publish(topic, args.sequential) if args.sequential else None
        lag = (
            await archiver_lag(mongo, args.burst, args.concurrency, args.wait, args.keep_burst)
            if args.burst
            else None
        )
    finally:
        try:
            cleanup = "never created"
            if created:
                cleanup = await delete_topic(kafka_admin, topic, not args.keep_replay_running)
        finally:
            await kafka_admin.close()
            await mongo.close()
    report(
        Results(args.event_types, batch, cost, dry, real, topic, on_topic, cleanup, sequential, lag)
    )


if __name__ == "__main__":
    asyncio.run(main())
