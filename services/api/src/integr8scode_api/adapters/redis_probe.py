"""Readiness of Redis."""

from __future__ import annotations

from redis.asyncio import Redis


async def redis_reachable(redis: Redis) -> bool:
    """True when Redis answers ``PING``."""
    return bool(await redis.ping())
