"""Rate limiting in Redis: each decision is one EVALSHA of a Lua script, so counting and
deciding are atomic across every API process and cost one round trip.

Both scripts take the time from Redis (``TIME``), not from the API process, so replicas with
skewed clocks still share one notion of a window. Keys expire once their state no longer
matters (two windows for the sliding window, a full refill for the bucket)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.rate_limit import Algorithm, RateLimitDecision, RateLimitRule

# Sliding window counter. State: hash {w: index of the current fixed window, c: its count,
# p: the previous window's count}. The estimate weights the previous window by the part of it
# that still lies inside the sliding window. Rejected requests are not counted, so a client that
# keeps knocking is not locked out for longer. Returns {allowed, remaining, reset_ms, retry_ms}.
SLIDING_WINDOW_LUA = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local index = math.floor(now / window)
local elapsed = now - index * window
local state = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w = tonumber(state[1])
local cur = tonumber(state[2]) or 0
local prev = tonumber(state[3]) or 0
if w == nil then
  cur, prev = 0, 0
elseif w == index - 1 then
  prev, cur = cur, 0
elseif w ~= index then
  cur, prev = 0, 0
end
local est = prev * (window - elapsed) / window + cur
local allowed, retry = 0, 0
if est + 1 <= limit then
  allowed = 1
  cur = cur + 1
  est = est + 1
elseif cur + 1 <= limit then
  retry = (window - elapsed) - (limit - 1 - cur) * window / prev
else
  retry = (window - elapsed) + window * (1 - (limit - 1) / cur)
end
redis.call('HSET', KEYS[1], 'w', index, 'c', cur, 'p', prev)
redis.call('PEXPIRE', KEYS[1], window * 2)
local reset = 0
if cur > 0 then
  reset = (window - elapsed) + window
elseif prev > 0 then
  reset = window - elapsed
end
return {allowed, math.max(0, math.floor(limit - est)), math.ceil(reset), math.ceil(retry)}
"""

# Token bucket. State: hash {tokens, ts (ms)}. Capacity ``limit``, refilled continuously at
# ``limit / window`` tokens per ms; an absent key is a full bucket, so the key expires exactly
# when the bucket would be full again. Returns {allowed, remaining, reset_ms, retry_ms}.
TOKEN_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local rate = capacity / window
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens, ts = capacity, now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
local allowed, retry = 0, 0
if tokens >= 1 then
  allowed = 1
  tokens = tokens - 1
else
  retry = (1 - tokens) / rate
end
local reset = math.max(1, math.ceil((capacity - tokens) / rate))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', ts)
redis.call('PEXPIRE', KEYS[1], reset)
return {allowed, math.floor(tokens), reset, math.ceil(retry)}
"""  # noqa: S105 - a Lua script, not a secret


@dataclass(frozen=True)
class LuaScript:
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()


SCRIPTS = {
    Algorithm.SLIDING_WINDOW: LuaScript(SLIDING_WINDOW_LUA),
    Algorithm.TOKEN_BUCKET: LuaScript(TOKEN_BUCKET_LUA),
}


class RedisRateLimiter:
    """``RateLimiter`` over Redis. Keys: ``<prefix>rate_limit:<rule>:<algorithm>:<subject>``
    (the algorithm is in the key so switching a rule's algorithm starts from a clean state)."""

    def __init__(
        self, redis: Redis, key_prefix: str, scripts: Mapping[Algorithm, LuaScript] = SCRIPTS
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._scripts = scripts
        self._shas = {algorithm: script.sha for algorithm, script in scripts.items()}

    def key(self, rule: RateLimitRule, subject: str) -> str:
        return f"{self._prefix}rate_limit:{rule.name}:{rule.algorithm.value}:{subject}"

    async def hit(self, rule: RateLimitRule, subject: str) -> RateLimitDecision:
        window_ms = max(1, round(rule.window_s * 1000))
        args: tuple[Any, ...] = (self.key(rule, subject), rule.limit, window_ms)
        try:
            try:
                reply = await self._redis.evalsha(self._shas[rule.algorithm], 1, *args)
            except NoScriptError:  # a restarted or flushed Redis: load once, then EVALSHA again
                await self._redis.script_load(self._scripts[rule.algorithm].source)
                reply = await self._redis.evalsha(self._shas[rule.algorithm], 1, *args)
        except RedisError as exc:
            raise DependencyUnavailableError(
                f"rate limiter unavailable: {type(exc).__name__}: {exc}", dependency="redis"
            ) from exc
        allowed, remaining, reset_ms, retry_ms = (int(v) for v in reply)
        return RateLimitDecision(
            allowed=bool(allowed),
            limit=rule.limit,
            remaining=remaining,
            reset_after_s=reset_ms / 1000,
            retry_after_s=retry_ms / 1000,
            algorithm=rule.algorithm,
            rule=rule.name,
            window_s=rule.window_s,
        )
