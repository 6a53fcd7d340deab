"""Status changes fanned out through Redis pub/sub, so every API instance's SSE streams and
waiting POSTs see the changes whichever instance applied them. A message is ``{"status",
"at"}`` (ISO 8601, UTC) on channel ``<prefix>execution:<id>``.

One pattern subscription per process (``listen``, kept running by the supervisor) receives
every execution's changes and hands each to the in-process subscribers of that execution: a
stream or a waiting request costs a queue, not a Redis connection and two commands of its own.
While that subscription is down, ``subscribe`` refuses (``DependencyUnavailableError``), and
each (re)subscription gives every subscriber an idle tick, so it re-reads the stored state it
may have missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.executions import StatusChange

log = logging.getLogger(__name__)

IDLE_S = 15.0  # how long a subscriber waits for a message before an idle tick
_QUEUED_PER_SUBSCRIBER = 16  # an execution changes status at most a handful of times
_WAKE_S = 1.0  # how often the listener looks up from an empty connection (to stop, to ping)


def _channel(prefix: str, execution_id: str) -> str:
    return f"{prefix}execution:{execution_id}"


class RedisStatusFeed:
    def __init__(self, redis: Redis, prefix: str = "integr8scode:", idle_s: float = IDLE_S) -> None:
        self._redis = redis
        self._prefix = prefix
        self._channel_prefix = _channel(prefix, "")
        self._idle_s = idle_s
        self._subscribers: dict[str, set[asyncio.Queue[StatusChange | None]]] = {}
        self._live = asyncio.Event()
        self._stopping = asyncio.Event()

    async def publish(self, execution_id: str, change: StatusChange) -> None:
        message = json.dumps(
            {"status": change.status.value, "at": change.at.astimezone(UTC).isoformat()}
        )
        try:
            await self._redis.publish(_channel(self._prefix, execution_id), message)
        except RedisError as exc:
            raise DependencyUnavailableError(f"status feed unavailable: {exc}") from exc

    # -- the process's one subscription ------------------------------------------------------

    async def listen(self) -> None:
        """Hold the pattern subscription and fan messages out until ``stop()``. Raises when
        Redis goes away (the supervisor runs it again); a quiet connection is pinged every
        ``idle_s``, so a dead one is noticed."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.psubscribe(f"{self._channel_prefix}*")
            self._live.set()
            self._tick_all()
            quiet_s = 0.0
            while not self._stopping.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_WAKE_S)
                if message is not None:
                    quiet_s = 0.0
                    self._dispatch(message)
                    continue
                quiet_s += _WAKE_S
                if quiet_s >= self._idle_s:
                    quiet_s = 0.0
                    await pubsub.ping()
        finally:
            self._live.clear()
            self._tick_all()
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call] # redis-py leaves it untyped

    def stop(self) -> None:
        """Ask ``listen`` to return (within ``_WAKE_S``)."""
        self._stopping.set()

    async def ready(self) -> bool:
        """Readiness: False while the subscription is down."""
        return self._live.is_set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode(errors="replace")
        if not isinstance(channel, str) or not channel.startswith(self._channel_prefix):
            return
        execution_id = channel[len(self._channel_prefix) :]
        queues = self._subscribers.get(execution_id)
        if not queues:
            return  # nobody here watches it: not even parsed
        try:
            change = StatusChange.model_validate_json(message["data"])
        except ValidationError:
            # Not ours to end a stream over: the stored state is re-read when idle.
            log.warning("unreadable status message on %s", execution_id)
            return
        for queue in queues:
            _offer(queue, change)

    def _tick_all(self) -> None:
        for queues in self._subscribers.values():
            for queue in queues:
                _offer(queue, None)

    # -- subscribers -------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self, execution_id: str
    ) -> AsyncIterator[AsyncIterator[StatusChange | None]]:
        """Subscribe before reading the current state, so no change falls in between."""
        if not self._live.is_set():
            raise DependencyUnavailableError(
                "status feed unavailable: the api is not subscribed to Redis; try again"
            )
        queue: asyncio.Queue[StatusChange | None] = asyncio.Queue(_QUEUED_PER_SUBSCRIBER)
        self._subscribers.setdefault(execution_id, set()).add(queue)

        async def changes() -> AsyncIterator[StatusChange | None]:
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), self._idle_s)
                except TimeoutError:
                    yield None  # idle: lets the stream send a keep-alive

        try:
            yield changes()
        finally:
            queues = self._subscribers.get(execution_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[execution_id]

    @property
    def subscriber_count(self) -> int:
        return sum(len(q) for q in self._subscribers.values())


def _offer(queue: asyncio.Queue[StatusChange | None], item: StatusChange | None) -> None:
    # A subscriber that fell this far behind re-reads the stored state at its next idle tick.
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(item)
