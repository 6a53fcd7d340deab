"""The per-saga write lock of the Mongo saga store holds across a release and a newcomer."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient

from integr8scode_coordinator.adapters.mongo_sagas import MongoSagaStore


async def test_a_newcomer_never_runs_beside_a_woken_waiter() -> None:
    # No connection is made: the lock is in-process and the collections are never used.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(connect=False)
    store = MongoSagaStore(client["unit"]["sagas"])
    inside = 0
    most = 0

    async def hold(release: asyncio.Event | None) -> None:
        nonlocal inside, most
        async with store._lock("ex-1"):
            inside += 1
            most = max(most, inside)
            if release is not None:
                await release.wait()
            await asyncio.sleep(0)
            inside -= 1

    release = asyncio.Event()
    first = asyncio.create_task(hold(release))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold(None))
    await asyncio.sleep(0)
    release.set()
    await asyncio.sleep(0)  # first releases; the waiter is woken but has not run yet
    newcomer = asyncio.create_task(hold(None))
    await asyncio.gather(first, waiter, newcomer)
    await client.close()

    assert most == 1
    assert store._locks == {}
