"""Rules in Redis: overrides over defaults, the in-process cache, a dead Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis
from tests.polling import eventually

from integr8scode_api.adapters.rate_limit_rules import RedisRuleStore
from integr8scode_api.config import RateLimitSettings
from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.rate_limit import RateLimitRule

if TYPE_CHECKING:
    from conftest import LiveStack

DEFAULTS = RateLimitSettings().default_rules()


def _store(live: LiveStack, ttl: float = 60.0) -> RedisRuleStore:
    return RedisRuleStore(live.redis, live.prefix, DEFAULTS, cache_ttl_s=ttl)


def _limits(rules: object) -> dict[str, int]:
    assert isinstance(rules, list)
    return {r.name: r.limit for r in rules}


async def test_overrides_replace_defaults_and_deleting_restores_them(live: LiveStack) -> None:
    store = _store(live)
    override = DEFAULTS[0].model_copy(update={"limit": 1})
    await store.put(override)
    listed = {lr.rule.name: lr for lr in await store.list_rules()}
    assert listed[override.name].rule.limit == 1
    assert listed[override.name].overridden
    assert not listed["default"].overridden
    assert _limits(await store.active_rules())[override.name] == 1

    assert await store.delete(override.name)
    assert not await store.delete(override.name)
    assert _limits(await store.active_rules())[override.name] == DEFAULTS[0].limit


async def test_another_process_sees_a_change_after_its_cache_expires(live: LiveStack) -> None:
    writer, reader = _store(live), _store(live, ttl=0.3)
    assert "extra" not in _limits(await reader.active_rules())
    extra = RateLimitRule.model_validate(
        {
            "name": "extra",
            "pattern": "GET /x",
            "limit": 7,
            "window_s": 1,
            "algorithm": "token_bucket",
            "scope": "client",
        }
    )
    await writer.put(extra)

    async def seen() -> bool:
        return "extra" in _limits(await reader.active_rules())

    await eventually(seen, timeout_s=5, interval_s=0.05, what="rule seen by the reader")


async def test_a_corrupt_entry_is_skipped_not_fatal(live: LiveStack) -> None:
    store = _store(live)
    await live.redis.hset(store.key, "broken", "{not json")
    assert {r.name for r in await store.active_rules()} == {r.name for r in DEFAULTS}


async def test_a_dead_redis_keeps_the_defaults_on_the_hot_path() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        store = RedisRuleStore(dead, "x:", DEFAULTS)
        assert _limits(await store.active_rules()) == _limits(DEFAULTS)
        with pytest.raises(DependencyUnavailableError):
            await store.list_rules()
    finally:
        await dead.aclose()
