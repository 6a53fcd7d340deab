"""The login throttle against the real Redis: counting within a window, blocking at the limit,
expiry with the window, reset on success, and failing open when Redis is away."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import Redis

from integr8scode_api.adapters.redis_login_throttle import RedisLoginThrottle

if TYPE_CHECKING:
    from conftest import LiveStack


async def test_the_account_is_blocked_at_the_limit_for_the_rest_of_the_window(
    live: LiveStack,
) -> None:
    throttle = RedisLoginThrottle(live.redis, live.prefix, max_failures=3, window_s=30)
    for _ in range(2):
        await throttle.failed("carol")
        assert await throttle.blocked_for("carol") == 0
    await throttle.failed("carol")
    wait_s = await throttle.blocked_for("carol")
    assert 25 < wait_s <= 30  # the window started at the first failure
    assert await throttle.blocked_for("dave") == 0  # per account


async def test_later_failures_do_not_extend_the_window(live: LiveStack) -> None:
    throttle = RedisLoginThrottle(live.redis, live.prefix, max_failures=2, window_s=30)
    await throttle.failed("erin")
    await live.redis.pexpire(throttle.key("erin"), 5_000)  # as if 25 s had passed
    await throttle.failed("erin")
    assert 0 < await throttle.blocked_for("erin") <= 5


async def test_a_success_clears_the_count(live: LiveStack) -> None:
    throttle = RedisLoginThrottle(live.redis, live.prefix, max_failures=2, window_s=30)
    await throttle.failed("frank")
    await throttle.succeeded("frank")
    await throttle.failed("frank")
    assert await throttle.blocked_for("frank") == 0


async def test_redis_away_means_not_throttled() -> None:
    gone = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    throttle = RedisLoginThrottle(gone, "x:", max_failures=1, window_s=30)
    await throttle.failed("gina")
    assert await throttle.blocked_for("gina") == 0
    await gone.aclose()
