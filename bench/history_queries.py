"""The services' history queries, timed straight on a Mongo-wire server (no services needed).

    uv run python bench/history_queries.py mongodb://127.0.0.1:27017 [--database integr8scode]

Seed the store first (bench/history_seed.py's shapes, e.g. through bench/history_growth.py
--keep) and run it once on the seeded database and once on an empty one (``--database`` of a
fresh name, with ``--create-indexes``: the services' indexes as they create them) to read the
ratio. The queries are
written as the adapters write them: a user's execution list (``executions`` by ``user_id``,
newest first, and its total), an execution by ``_id``, event-replay's dry run (a count capped
at max_events + 1 by event type, by execution, by a day of time; its 20-event preview) and a
replay's read (pages of 500 in (``occurred_at``, ``event_id``) order with the keyset ``$or``).
Prints p50 per query and the replay's events/s; never a pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

Db = AsyncDatabase[dict[str, Any]]
ORDER = [("occurred_at", ASCENDING), ("event_id", ASCENDING)]
NEWEST = [("created_at", DESCENDING), ("_id", DESCENDING)]
DRY_RUN_CAP = 10_001  # event-replay's default max_events + 1
PAGE = 500  # event-replay's batch_size


async def ensure_indexes(db: Db) -> None:
    """The indexes the api and event-replay create at start."""
    await db["executions"].create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])
    events = db["events"]
    await events.create_index([("event_id", ASCENDING)], unique=True)
    for first in ("execution_id", "event_type", "user_id"):
        await events.create_index(
            [(first, ASCENDING), ("occurred_at", ASCENDING), ("event_id", ASCENDING)]
        )
    await events.create_index([("occurred_at", ASCENDING), ("event_id", ASCENDING)])


async def p50_ms(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def replay_rate(db: Db, event_type: str, pages: int) -> tuple[int, float]:
    """Events read per second over ``pages`` keyset pages of one event type."""
    events, n = db["events"], 0
    query: dict[str, Any] = {"event_type": event_type}
    start = time.perf_counter()
    for _ in range(pages):
        page = await events.find(query).sort(ORDER).limit(PAGE).to_list()
        n += len(page)
        if len(page) < PAGE:
            break
        last = page[-1]
        query = {
            "event_type": event_type,
            "occurred_at": {"$gte": last["occurred_at"]},
            "$or": [
                {"occurred_at": {"$gt": last["occurred_at"]}},
                {"occurred_at": last["occurred_at"], "event_id": {"$gt": last["event_id"]}},
            ],
        }
    return n, n / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--database", default="integr8scode")
    parser.add_argument("--user", default=None, help="the user with the most executions")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--replay-pages", type=int, default=20)
    parser.add_argument(
        "--create-indexes", action="store_true", help="create the services' indexes first"
    )
    args = parser.parse_args()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.url, tz_aware=True)
    db = client[args.database]
    if args.create_indexes:
        await ensure_indexes(db)
    ex, ev = db["executions"], db["events"]
    # collStats: the server's own figure (a count could itself decode every document)
    sizes = {c: (await db.command("collStats", c)).get("count") for c in ("executions", "events")}
    user = args.user
    if user is None:  # the seed's history user, else whoever has an execution
        some = await ex.find_one({"user_id": "veteran"}) or await ex.find_one({}) or {}
        user = some.get("user_id", "nobody")
    any_exec = await ex.find_one({"user_id": user}) or {"_id": "none"}
    any_event = await ev.find_one({"event_type": "execution.completed"}) or {}
    day_from = any_event.get("occurred_at")
    execution_id = any_event.get("execution_id", "none")
    shapes: dict[str, Callable[[], Awaitable[Any]]] = {
        "exec list page": lambda: ex.find({"user_id": user}).sort(NEWEST).limit(20).to_list(),
        "exec list total": lambda: ex.count_documents({"user_id": user}),
        "exec list (no executions)": lambda: (
            ex.find({"user_id": "nobody"}).sort(NEWEST).limit(20).to_list()
        ),
        "exec by _id": lambda: ex.find_one({"_id": any_exec["_id"]}),
        "dry run count by type": lambda: ev.count_documents(
            {"event_type": "execution.completed"}, limit=DRY_RUN_CAP
        ),
        "dry run count by execution": lambda: ev.count_documents(
            {"execution_id": execution_id}, limit=DRY_RUN_CAP
        ),
        "dry run count, a day": lambda: ev.count_documents(
            {"occurred_at": {"$gte": day_from, "$lt": day_from + timedelta(days=1)}}
            if day_from
            else {"occurred_at": {"$gte": 0}},
            limit=DRY_RUN_CAP,
        ),
        "dry run preview by type": lambda: (
            ev.find({"event_type": "execution.completed"}).sort(ORDER).limit(20).to_list()
        ),
    }
    print(f"{args.url} {args.database}: {sizes}; user {user}")
    for label, call in shapes.items():
        print(f"  {label:30} {await p50_ms(call, args.repeat):8.1f} ms")
    n, rate = await replay_rate(db, "execution.completed", args.replay_pages)
    print(f"  {'replay read by type':30} {rate:8.0f} events/s ({n} events)")
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
