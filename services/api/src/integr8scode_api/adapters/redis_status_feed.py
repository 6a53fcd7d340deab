"""Status changes fanned out through Redis pub/sub, so every API instance's SSE streams see
the changes whichever instance applied them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from integr8scode_api.domain.errors import DependencyUnavailable


def _channel(prefix: str, execution_id: str) -> str:
    return f"{prefix}execution:{execution_id}"


class RedisStatusFeed:
    def __init__(self, redis: Redis, prefix: str = "integr8scode:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def publish(self, execution_id: str, change: dict[str, Any]) -> None:
        try:
            await self._redis.publish(_channel(self._prefix, execution_id), json.dumps(change))
        except RedisError as exc:
            raise DependencyUnavailable(f"status feed unavailable: {exc}") from exc

    @asynccontextmanager
    async def subscribe(self, execution_id: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Subscribe before reading the current state, so no change falls in between."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(_channel(self._prefix, execution_id))
        except RedisError as exc:
            await pubsub.aclose()  # type: ignore[no-untyped-call] # redis-py leaves it untyped
            raise DependencyUnavailable(f"status feed unavailable: {exc}") from exc

        async def changes() -> AsyncIterator[dict[str, Any]]:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=15.0)
                if message is None:
                    yield {}  # idle: lets the stream send a keep-alive
                    continue
                yield json.loads(message["data"])

        try:
            yield changes()
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
