"""How the Mongo-wire server's cost grows with a collection's size, per query shape.

    uv run python bench/mongo_wire_queries.py --sizes 1000,10000,50000 \
        mongodb://127.0.0.1:27017 [mongodb://127.0.0.1:27019 ...]

For each server and size: a scratch database gets a collection shaped like `executions`
(string `_id`, `user_id` from 50 users, `created_at`, a 700-byte body) with the index the api
creates on (user_id, created_at desc); then it times the shapes the services use: a lookup and an
update by `_id`, one user's newest page, the page of a user with none, a count by user. The
database is dropped afterwards. Compare FerretDB's SQLite and PostgreSQL backends
(FERRETDB_BACKEND, deploy/local/components/ferretdb.sh) or a real MongoDB side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient

USERS = [f"user-{i}" for i in range(50)]


async def per_call_ms(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        await call()
    return (time.perf_counter() - start) / repeat * 1000


async def measure(url: str, size: int, repeat: int) -> str:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    name = f"bench_wire_{uuid.uuid4().hex[:8]}"
    try:
        col = client[name]["executions"]
        await col.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)])
        docs = [
            {
                "_id": uuid.uuid4().hex,
                "user_id": random.choice(USERS),
                "created_at": i,
                "status": "completed",
                "script": "x" * 200,
                "stdout": "y" * 500,
            }
            for i in range(size)
        ]
        start = time.perf_counter()
        for i in range(0, size, 1000):
            await col.insert_many(docs[i : i + 1000])
        inserts = size / (time.perf_counter() - start)
        ids = [d["_id"] for d in random.sample(docs, min(200, size))]
        shapes = {
            "find _id": lambda: col.find_one({"_id": random.choice(ids)}),
            "update _id": lambda: col.update_one(
                {"_id": random.choice(ids)}, {"$set": {"status": "running"}}
            ),
            "user page": lambda: (
                col.find({"user_id": USERS[7]}).sort("created_at", -1).limit(20).to_list()
            ),
            "empty user page": lambda: (
                col.find({"user_id": "nobody"}).sort("created_at", -1).limit(20).to_list()
            ),
            "count by user": lambda: col.count_documents({"user_id": USERS[7]}),
        }
        timings = [f"{k} {await per_call_ms(call, repeat):7.1f} ms" for k, call in shapes.items()]
        return f"{url:30} n={size:<7} insert {inserts:7.0f}/s  " + "  ".join(timings)
    finally:
        await client.drop_database(name)
        await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        for url in args.urls:
            print(await measure(url, size, args.repeat), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
