"""How long one rate-limit decision takes against a running Redis, next to a bare PING.

    uv run --no-sync python services/api/bench/rate_limit_latency.py [--calls 1000] [--redis URL]

Prints p50/p90/p99 in microseconds of: PING, one EVALSHA per algorithm (the limiter), and the
whole gate (rule lookup from the in-process cache + EVALSHA), each measured sequentially from
one asyncio client, plus the decision's cost relative to PING. Figures, not a pass/fail."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from integr8scode_api.adapters.rate_limit_rules import RedisRuleStore
from integr8scode_api.adapters.redis_rate_limit import RedisRateLimiter
from integr8scode_api.config import RateLimitSettings
from integr8scode_api.domain.rate_limit import Algorithm, RateLimitGate, RateLimitRule, Scope


async def _timed(calls: int, step: Callable[[int], Awaitable[object]]) -> list[float]:
    for i in range(min(50, calls)):  # warm up: connection, script cache
        await step(i)
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        await step(i)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def _line(name: str, samples: list[float], baseline: float | None) -> str:
    q = statistics.quantiles(samples, n=100)
    p50 = statistics.median(samples)
    ratio = f"  x{p50 / baseline:.2f} PING" if baseline else ""
    return f"{name:<28} p50 {p50:7.0f} us  p90 {q[89]:7.0f} us  p99 {q[98]:7.0f} us{ratio}\n"


def _hits(limiter: RedisRateLimiter, rule: RateLimitRule) -> Callable[[int], Awaitable[object]]:
    return lambda i: limiter.hit(rule, f"user:{i % 100}")


async def main(calls: int, url: str) -> None:
    redis = Redis.from_url(url)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    limiter = RedisRateLimiter(redis, prefix)
    rules = RedisRuleStore(redis, prefix, RateLimitSettings().default_rules(), cache_ttl_s=2.0)
    gate = RateLimitGate(limiter, rules)
    try:
        ping = await _timed(calls, lambda _: redis.ping())
        baseline = statistics.median(ping)
        out = [f"{calls} sequential calls against {url}\n", _line("PING", ping, None)]
        for algorithm in Algorithm:
            rule = RateLimitRule(
                name=f"bench-{algorithm.value}",
                pattern="*",
                limit=1_000_000,
                window_s=60,
                algorithm=algorithm,
                scope=Scope.USER,
            )
            samples = await _timed(calls, _hits(limiter, rule))
            out.append(_line(f"limiter {algorithm.value}", samples, baseline))
        whole = await _timed(
            calls,
            lambda i: gate.check(
                method="POST", path="/api/v1/execute", user_id=f"u{i % 100}", client="127.0.0.1"
            ),
        )
        out.append(_line("gate (execute rule)", whole, baseline))
        sys.stdout.write("".join(out))
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.redis))
