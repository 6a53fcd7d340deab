"""Status changes fanned out through Redis pub/sub, so every API instance's SSE streams see
the changes whichever instance applied them. A message is ``{"status", "at"}`` (ISO 8601, UTC)
on channel ``<prefix>execution:<id>``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.executions import StatusChange

log = logging.getLogger(__name__)

IDLE_S = 15.0  # how long a subscriber waits for a message before an idle tick


def _channel(prefix: str, execution_id: str) -> str:
    return f"{prefix}execution:{execution_id}"


class RedisStatusFeed:
    def __init__(self, redis: Redis, prefix: str = "integr8scode:", idle_s: float = IDLE_S) -> None:
        self._redis = redis
        self._prefix = prefix
        self._idle_s = idle_s

    async def publish(self, execution_id: str, change: StatusChange) -> None:
        message = json.dumps(
            {"status": change.status.value, "at": change.at.astimezone(UTC).isoformat()}
        )
        try:
            await self._redis.publish(_channel(self._prefix, execution_id), message)
        except RedisError as exc:
            raise DependencyUnavailableError(f"status feed unavailable: {exc}") from exc

    @asynccontextmanager
    async def subscribe(
        self, execution_id: str
    ) -> AsyncIterator[AsyncIterator[StatusChange | None]]:
        """Subscribe before reading the current state, so no change falls in between."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(_channel(self._prefix, execution_id))
        except RedisError as exc:
            await pubsub.aclose()  # type: ignore[no-untyped-call] # redis-py leaves it untyped
            raise DependencyUnavailableError(f"status feed unavailable: {exc}") from exc

        async def changes() -> AsyncIterator[StatusChange | None]:
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self._idle_s
                )
                if message is None:
                    yield None  # idle: lets the stream send a keep-alive
                    continue
                try:
                    yield StatusChange.model_validate_json(message["data"])
                except ValidationError:
                    # Not ours to end a stream over: the stored state is re-read when idle.
                    log.warning("unreadable status message on %s", execution_id)

        try:
            yield changes()
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
