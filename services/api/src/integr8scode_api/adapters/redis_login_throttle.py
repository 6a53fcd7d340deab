"""``LoginThrottle`` on Redis: one counter per account, ``<prefix>login_failures:<account>``.

A failed login increments it; the first failure of a window sets its expiry, so the count is
of failures within ``window_s`` of the first one. At ``max_failures`` the account refuses
logins until the key expires; a successful login deletes it. Like the rate limits, it fails
open: with Redis away logins are not throttled (and the service says so in its log), rather
than every account locked out.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class RedisLoginThrottle:
    def __init__(
        self, redis: Redis, key_prefix: str, *, max_failures: int, window_s: float
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._max = max_failures
        self._window_ms = max(1, round(window_s * 1000))

    def key(self, account: str) -> str:
        return f"{self._prefix}login_failures:{account}"

    async def blocked_for(self, account: str) -> float:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self.key(account))
                pipe.pttl(self.key(account))
                count, ttl_ms = await pipe.execute()
        except RedisError as exc:
            log.warning("login throttle unavailable (%s); not throttling", exc)
            return 0.0
        if count is None or int(count) < self._max or ttl_ms is None or ttl_ms <= 0:
            return 0.0
        return float(ttl_ms) / 1000

    async def failed(self, account: str) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(self.key(account))
                pipe.pexpire(self.key(account), self._window_ms, nx=True)
                await pipe.execute()
        except RedisError as exc:
            log.warning("login throttle unavailable (%s); failure not counted", exc)

    async def succeeded(self, account: str) -> None:
        try:
            await self._redis.delete(self.key(account))
        except RedisError as exc:
            log.warning("login throttle unavailable (%s)", exc)
