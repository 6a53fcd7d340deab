"""The status feed on the real Redis: one pattern subscription per process, fanned out in
memory to each execution's subscribers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from tests.polling import eventually

from integr8scode_api.adapters.redis_status_feed import RedisStatusFeed
from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.executions import ExecutionStatus, StatusChange

if TYPE_CHECKING:
    from conftest import LiveStack

T0 = datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


@contextlib.asynccontextmanager
async def listening(feed: RedisStatusFeed) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(feed.listen())
    try:
        await eventually(feed.ready, timeout_s=10, what="the feed's subscription")
        yield task
    finally:
        feed.stop()
        with contextlib.suppress(asyncio.CancelledError):  # a test may have cancelled it
            await asyncio.wait_for(task, timeout=10)


async def _next_change(changes: AsyncIterator[StatusChange | None]) -> StatusChange:
    async for item in changes:  # idle ticks (None) may come first
        if item is not None:
            return item
    raise AssertionError("the feed ended")


async def test_changes_reach_their_execution_s_subscribers_and_unreadable_ones_are_skipped(
    live: LiveStack,
) -> None:
    feed = RedisStatusFeed(live.redis, prefix=live.prefix, idle_s=0.5)
    change = StatusChange(status=ExecutionStatus.RUNNING, at=T0)
    async with listening(feed), feed.subscribe("e1") as first, feed.subscribe("e1") as second:
        await live.redis.publish(f"{live.prefix}execution:e1", b"not json")
        await feed.publish("other", StatusChange(status=ExecutionStatus.FAILED, at=T0))
        await feed.publish("e1", change)
        # The unreadable message before it was skipped; both subscribers get it.
        assert await asyncio.wait_for(_next_change(first), timeout=10) == change
        assert await asyncio.wait_for(_next_change(second), timeout=10) == change

        async def idle_tick() -> None:
            assert await anext(first) is None  # the other execution's change is not ours

        await asyncio.wait_for(idle_tick(), timeout=10)
    assert feed.subscriber_count == 0


async def test_subscribers_share_one_redis_connection(live: LiveStack) -> None:
    feed = RedisStatusFeed(live.redis, prefix=live.prefix, idle_s=5)

    async def connections() -> int:
        clients = await live.redis.client_list()
        return sum(1 for c in clients if c.get("cmd") in {"psubscribe", "subscribe", "ping"})

    async with listening(feed):
        before = await connections()
        async with contextlib.AsyncExitStack() as stack:
            for i in range(50):
                await stack.enter_async_context(feed.subscribe(f"many-{i}"))
            assert feed.subscriber_count == 50
            assert await connections() == before  # fifty subscribers, no new connection
            await feed.publish("many-7", StatusChange(status=ExecutionStatus.COMPLETED, at=T0))
    assert feed.subscriber_count == 0


async def test_without_its_subscription_the_feed_refuses_and_a_resubscription_ticks(
    live: LiveStack,
) -> None:
    feed = RedisStatusFeed(live.redis, prefix=live.prefix, idle_s=30)
    assert not await feed.ready()
    with pytest.raises(DependencyUnavailableError, match="not subscribed"):
        async with feed.subscribe("e2"):
            pass
    async with listening(feed) as task, feed.subscribe("e2") as changes:
        # The listener going away (Redis dropped it) ticks every subscriber so it re-reads
        # what it may miss; the idle tick comes long before idle_s (30 s) would give one.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not await feed.ready()
        assert await asyncio.wait_for(anext(changes), timeout=5) is None
