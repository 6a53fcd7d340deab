"""The Lua scripts against the real Redis: counts, refusals, refill, atomicity, expiry."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis
from tests.polling import eventually

from integr8scode_api.adapters.redis_rate_limit import SCRIPTS, LuaScript, RedisRateLimiter
from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.rate_limit import Algorithm, RateLimitRule, Scope

if TYPE_CHECKING:
    from conftest import LiveStack


def _rule(algorithm: Algorithm, limit: int, window_s: float) -> RateLimitRule:
    return RateLimitRule(
        name="t",
        pattern="*",
        limit=limit,
        window_s=window_s,
        algorithm=algorithm,
        scope=Scope.USER,
    )


async def test_sliding_window_counts_down_then_refuses(live: LiveStack) -> None:
    limiter = RedisRateLimiter(live.redis, live.prefix)
    rule = _rule(Algorithm.SLIDING_WINDOW, limit=5, window_s=60)
    decisions = [await limiter.hit(rule, "user:a") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    refused = decisions[-1]
    assert 0 < refused.retry_after_s <= 120
    assert 60 <= refused.reset_after_s <= 120
    assert refused.rule == "t"
    assert refused.algorithm is Algorithm.SLIDING_WINDOW
    # another subject has its own count
    assert (await limiter.hit(rule, "user:b")).remaining == 4


async def test_sliding_window_slides(live: LiveStack) -> None:
    limiter = RedisRateLimiter(live.redis, live.prefix)
    rule = _rule(Algorithm.SLIDING_WINDOW, limit=2, window_s=0.3)
    while (await limiter.hit(rule, "user:a")).allowed:
        pass

    async def allowed_again() -> bool:
        return (await limiter.hit(rule, "user:a")).allowed

    await eventually(allowed_again, timeout_s=5, interval_s=0.05, what="window slid on")


async def test_token_bucket_bursts_then_refills_at_its_rate(live: LiveStack) -> None:
    limiter = RedisRateLimiter(live.redis, live.prefix)
    rule = _rule(Algorithm.TOKEN_BUCKET, limit=3, window_s=30)  # 0.1 token per second
    decisions = [await limiter.hit(rule, "user:a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    refused = decisions[-1]
    assert 9 < refused.retry_after_s <= 10  # one token takes 10 s
    assert 29 < refused.reset_after_s <= 30

    fast = _rule(Algorithm.TOKEN_BUCKET, limit=2, window_s=0.2)  # 10 tokens per second
    while (await limiter.hit(fast, "user:b")).allowed:
        pass

    async def refilled() -> bool:
        return (await limiter.hit(fast, "user:b")).allowed

    await eventually(refilled, timeout_s=5, interval_s=0.02, what="bucket refilled")


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_concurrent_hits_never_exceed_the_limit(
    live: LiveStack, algorithm: Algorithm
) -> None:
    limiter = RedisRateLimiter(live.redis, live.prefix)
    rule = _rule(algorithm, limit=20, window_s=600)
    decisions = await asyncio.gather(*(limiter.hit(rule, "user:crowd") for _ in range(60)))
    assert sum(d.allowed for d in decisions) == 20


@pytest.mark.parametrize(
    ("algorithm", "max_ttl_ms"), [("sliding_window", 2000), ("token_bucket", 1000)]
)
async def test_state_expires_when_it_no_longer_matters(
    live: LiveStack, algorithm: str, max_ttl_ms: int
) -> None:
    limiter = RedisRateLimiter(live.redis, live.prefix)
    rule = _rule(Algorithm(algorithm), limit=10, window_s=1)
    await limiter.hit(rule, "user:ttl")
    ttl = await live.redis.pttl(limiter.key(rule, "user:ttl"))
    assert 0 < ttl <= max_ttl_ms


async def test_a_script_redis_does_not_know_yet_is_loaded_on_first_use(live: LiveStack) -> None:
    # A fresh comment gives a SHA Redis has never seen: the NOSCRIPT path, without flushing
    # the scripts of everybody else on the shared Redis.
    fresh = {
        algorithm: LuaScript(f"{script.source}\n-- {uuid.uuid4().hex}")
        for algorithm, script in SCRIPTS.items()
    }
    limiter = RedisRateLimiter(live.redis, live.prefix, scripts=fresh)
    for algorithm in Algorithm:
        assert not (await live.redis.script_exists(fresh[algorithm].sha))[0]
        assert (await limiter.hit(_rule(algorithm, 5, 60), "user:new")).allowed
        assert (await live.redis.script_exists(fresh[algorithm].sha))[0]


async def test_an_unreachable_redis_is_dependency_unavailable() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        with pytest.raises(DependencyUnavailableError, match="rate limiter unavailable"):
            await RedisRateLimiter(dead, "x:").hit(_rule(Algorithm.TOKEN_BUCKET, 1, 1), "s")
    finally:
        await dead.aclose()
