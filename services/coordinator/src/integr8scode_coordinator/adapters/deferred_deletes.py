"""Deletes that may wait: gathered per collection and sent as one ``delete_many`` per flush.

A saga's claim and its published outbox entry decide nothing once the saga has ended and its
event is out: the claim's holder is done with it, and the outbox entry only keeps a second
finisher out, which the saga's terminal status already does. Deleting each at once cost two
round trips per execution (issue 13); here they go in batches, ``delay_s`` after the first one
waiting, or at once when ``batch`` are waiting.

What waiting changes: until its flush, a published outbox entry is still there, so a crash in
between leaves it to the outbox sweep, which publishes the event again (same ``event_id``:
consumers apply it once) and deletes it; a claim left behind by a crash stays, harmless (its
saga is terminal: nothing claims, requeues or cancels it again) and small. A store that is
down keeps the ids for the next flush (at most ``kept`` per collection; past that the oldest
are given up, with a log line: the same leftovers as a crash).

A flush is housekeeping for several executions at once: it runs untraced, in none of their
traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Collection
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from integr8scode_telemetry import untraced

log = logging.getLogger(__name__)


class DeferredDeletes:
    def __init__(self, *, delay_s: float = 0.25, batch: int = 128, kept: int = 10_000) -> None:
        self._delay_s = delay_s
        self._batch = batch
        self._kept = kept
        self._collections: dict[str, AsyncCollection[dict[str, Any]]] = {}
        self._pending: dict[str, dict[str, None]] = {}  # collection → ids, insertion-ordered
        self._flusher: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self._closed = False

    @property
    def pending(self) -> int:
        return sum(len(ids) for ids in self._pending.values())

    def waiting(self, collection: AsyncCollection[dict[str, Any]]) -> Collection[str]:
        """Ids of ``collection`` deleted here but not flushed yet: readers treat them as gone."""
        return self._pending.get(collection.name, {}).keys()

    def delete(self, collection: AsyncCollection[dict[str, Any]], document_id: str) -> None:
        """Delete ``{_id: document_id}`` from ``collection`` with the next flush."""
        self._collections.setdefault(collection.name, collection)
        ids = self._pending.setdefault(collection.name, {})
        ids[document_id] = None
        while len(ids) > self._kept:
            given_up = next(iter(ids))
            del ids[given_up]
            log.warning("%s: gave up deleting %s (store away too long)", collection.name, given_up)
        if not self._closed:  # after close: left over, as by a crash
            self._schedule(now=self.pending >= self._batch)

    async def flush(self) -> None:
        """Send every waiting delete now; ids whose delete failed wait for the next flush."""
        with untraced():
            for name in list(self._pending):
                ids = self._pending.pop(name, {})
                if not ids:
                    continue
                try:
                    await self._collections[name].delete_many({"_id": {"$in": list(ids)}})
                except BaseException as exc:
                    # Back in front of any added meanwhile, oldest first (also when cancelled:
                    # whether the delete landed is unknown, and deleting again is harmless).
                    self._pending[name] = ids | self._pending.get(name, {})
                    if isinstance(exc, PyMongoError):
                        log.warning("%s: %d deletes wait for the store (%s)", name, len(ids), exc)
                    raise

    async def close(self) -> None:
        """Flush what waits (best effort: a store that is down leaves the leftovers a crash
        would) and take no more."""
        self._closed = True
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        with contextlib.suppress(PyMongoError):
            await self.flush()

    def _schedule(self, *, now: bool) -> None:
        if now:
            self._full.set()  # a full batch goes without waiting out the delay
        if self._flusher is None or self._flusher.done():
            # A fresh context: the caller's (an execution's trace) is not the flush's.
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_soon(), name="saga-deferred-deletes", context=contextvars.Context()
            )

    async def _flush_soon(self) -> None:
        # The batching window: ``delay_s``, or until a batch is full.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._delay_s):
                await self._full.wait()
        backoff = self._delay_s
        while self.pending:
            self._full.clear()
            try:
                await self.flush()
            except PyMongoError:
                backoff = min(backoff * 2, 5.0)
                await asyncio.sleep(backoff)  # backoff while the store is away
