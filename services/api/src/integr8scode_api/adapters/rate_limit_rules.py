"""Rate-limit rules: defaults from settings, overridden or extended at run time by admins.

Run-time rules live in one Redis hash (``<prefix>rate_limit:rules``, field = rule name, value =
the rule as JSON), so every API process sees a change. Each process caches the merged rules for
``cache_ttl_s``: a change made through this process applies at once, one made through another
within that time. On the hot path a Redis failure never fails the request: the last known rules
(or the defaults) stay in force."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.rate_limit import ListedRule, RateLimitRule

log = logging.getLogger(__name__)
T = TypeVar("T")


class RedisRuleStore:
    """``RateLimitRuleStore`` over a Redis hash, with an in-process cache."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        defaults: Iterable[RateLimitRule],
        *,
        cache_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self.key = f"{key_prefix}rate_limit:rules"
        self._defaults = {rule.name: rule for rule in defaults}
        self._ttl = cache_ttl_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._overrides: dict[str, RateLimitRule] = {}
        self._active: list[RateLimitRule] | None = None
        self._fresh_until = 0.0

    async def active_rules(self) -> Sequence[RateLimitRule]:
        if self._active is not None and self._clock() < self._fresh_until:
            return self._active
        async with self._lock:  # one reload per process at a time; the others reuse it
            if self._active is None or self._clock() >= self._fresh_until:
                try:
                    self._overrides = await self._load()
                except DependencyUnavailableError as exc:
                    log.warning("rate-limit rules: %s; keeping the last known rules", exc.detail)
                self._active = list(self._merged().values())
                self._fresh_until = self._clock() + self._ttl
        return self._active

    async def list_rules(self) -> Sequence[ListedRule]:
        self._overrides = await self._load()
        self._invalidate()
        return [
            ListedRule(rule=rule, overridden=name in self._overrides)
            for name, rule in sorted(self._merged().items())
        ]

    async def put(self, rule: RateLimitRule) -> None:
        await self._call(self._redis.hset(self.key, rule.name, rule.model_dump_json()))
        log.info("rate-limit rule %s set: %s", rule.name, rule.model_dump(mode="json"))
        self._invalidate()

    async def delete(self, name: str) -> bool:
        removed = bool(await self._call(self._redis.hdel(self.key, name)))
        if removed:
            log.info("rate-limit rule %s removed (a default of that name applies again)", name)
        self._invalidate()
        return removed

    def _merged(self) -> dict[str, RateLimitRule]:
        return {**self._defaults, **self._overrides}

    def _invalidate(self) -> None:
        self._fresh_until = 0.0

    async def _load(self) -> dict[str, RateLimitRule]:
        raw: dict[Any, Any] = await self._call(self._redis.hgetall(self.key))
        rules: dict[str, RateLimitRule] = {}
        for field, value in raw.items():
            name = field.decode() if isinstance(field, bytes) else field
            try:
                rule = RateLimitRule.model_validate_json(value)
            except ValidationError:
                log.exception("rate-limit rule %s in Redis is invalid, ignored", name)
                continue
            rules[rule.name] = rule
        return rules

    @staticmethod
    async def _call(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except RedisError as exc:
            raise DependencyUnavailableError(
                f"rate-limit rules unavailable: {type(exc).__name__}", dependency="redis"
            ) from exc
