"""``DeferredDeletes`` on a recording stand-in collection: batching, retries, close, untraced."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import AutoReconnect

from integr8scode_coordinator.adapters.deferred_deletes import DeferredDeletes


class RecordingCollection:
    """What ``DeferredDeletes`` uses of a collection: its name and ``delete_many``."""

    def __init__(self, name: str, failures: int = 0) -> None:
        self.name = name
        self.failures = failures
        self.calls: list[list[str]] = []
        self.instrumented: list[bool] = []
        self.called = asyncio.Event()

    async def delete_many(self, query: dict[str, Any]) -> None:
        self.instrumented.append(is_instrumentation_enabled())
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("the store went away")
        self.calls.append(list(query["_id"]["$in"]))
        self.called.set()


def _c(collection: RecordingCollection) -> AsyncCollection[dict[str, Any]]:
    return cast("AsyncCollection[dict[str, Any]]", collection)


async def test_deletes_wait_for_one_batch_per_collection() -> None:
    deletes = DeferredDeletes(delay_s=0.05)
    claims, outbox = RecordingCollection("saga_claims"), RecordingCollection("saga_outbox")
    for i in range(3):
        deletes.delete(_c(claims), f"ex-{i}")
        deletes.delete(_c(outbox), f"ex-{i}")
    assert set(deletes.waiting(_c(claims))) == {"ex-0", "ex-1", "ex-2"}

    async with asyncio.timeout(5):
        await claims.called.wait()
        await outbox.called.wait()

    assert claims.calls == [["ex-0", "ex-1", "ex-2"]]
    assert outbox.calls == [["ex-0", "ex-1", "ex-2"]]
    assert deletes.pending == 0
    assert not list(deletes.waiting(_c(claims)))
    assert claims.instrumented == [False]  # housekeeping: no spans, in nobody's trace
    await deletes.close()


async def test_a_full_batch_goes_without_waiting_out_the_delay() -> None:
    deletes = DeferredDeletes(delay_s=3600, batch=4)
    claims = RecordingCollection("saga_claims")
    for i in range(4):
        deletes.delete(_c(claims), f"ex-{i}")

    await asyncio.wait_for(claims.called.wait(), timeout=5)

    assert claims.calls == [["ex-0", "ex-1", "ex-2", "ex-3"]]
    await deletes.close()


async def test_a_store_that_is_away_keeps_the_ids_for_the_next_flush() -> None:
    deletes = DeferredDeletes(delay_s=0.01)
    claims = RecordingCollection("saga_claims", failures=1)
    deletes.delete(_c(claims), "ex-0")

    await asyncio.wait_for(claims.called.wait(), timeout=10)  # after one failure and a backoff

    assert claims.calls == [["ex-0"]]
    assert len(claims.instrumented) == 2
    await deletes.close()


async def test_a_failed_flush_raises_and_keeps_the_ids_in_order() -> None:
    deletes = DeferredDeletes(delay_s=3600)
    claims = RecordingCollection("saga_claims", failures=1)
    deletes.delete(_c(claims), "ex-0")
    deletes.delete(_c(claims), "ex-1")

    with pytest.raises(AutoReconnect):
        await deletes.flush()
    assert list(deletes.waiting(_c(claims))) == ["ex-0", "ex-1"]

    await deletes.flush()
    assert claims.calls == [["ex-0", "ex-1"]]
    await deletes.close()


async def test_close_flushes_and_what_comes_after_is_left_over() -> None:
    deletes = DeferredDeletes(delay_s=3600)
    claims = RecordingCollection("saga_claims")
    deletes.delete(_c(claims), "ex-0")

    await deletes.close()
    assert claims.calls == [["ex-0"]]

    deletes.delete(_c(claims), "ex-late")  # a finish after shutdown began: as after a crash
    assert list(deletes.waiting(_c(claims))) == ["ex-late"]
    assert claims.calls == [["ex-0"]]


async def test_close_with_the_store_away_gives_up_quietly() -> None:
    deletes = DeferredDeletes(delay_s=3600)
    claims = RecordingCollection("saga_claims", failures=5)
    deletes.delete(_c(claims), "ex-0")

    await deletes.close()  # no exception: the leftovers a crash would leave

    assert claims.calls == []


async def test_ids_kept_are_bounded_oldest_given_up() -> None:
    deletes = DeferredDeletes(delay_s=3600, batch=1000, kept=3)
    claims = RecordingCollection("saga_claims")
    for i in range(5):
        deletes.delete(_c(claims), f"ex-{i}")

    assert list(deletes.waiting(_c(claims))) == ["ex-2", "ex-3", "ex-4"]
    await deletes.close()
