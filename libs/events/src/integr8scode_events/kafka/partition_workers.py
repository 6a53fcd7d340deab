"""One worker per assigned partition, so a slow message holds up only its own partition.

The consumer runner's default handles a fetched batch in order and fetches again when it is
done: one slow handler (a webhook receiver that hangs) delays every partition. With
``partition_concurrency`` the runner hands each partition's records to that partition's worker
and keeps fetching; order within a partition (one execution's events) is kept, partitions
proceed independently. A partition whose queue is long is paused at the broker until its
worker catches up, so memory stays bounded. Offsets are committed as each worker completes
records; nothing is committed before it was handled or dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

log = logging.getLogger(__name__)


@dataclass
class _Worker:
    queue: deque[Any] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    stopping: bool = False


class PartitionWorkers:
    """Queues and workers of the partitions a consumer holds.

    ``handle(record)`` handles one record (never raises for a handler's failure: the runner
    retries and dead-letters inside it); ``done(tp, next_offset)`` records what may be committed.
    """

    def __init__(
        self,
        handle: Callable[[Any], Awaitable[None]],
        done: Callable[[TopicPartition, int], None],
        *,
        max_queued: int,
    ) -> None:
        self._handle = handle
        self._done = done
        self._max_queued = max_queued
        self._workers: dict[TopicPartition, _Worker] = {}

    def add(self, tp: TopicPartition, records: Iterable[Any]) -> None:
        """Queue fetched records for ``tp``'s worker (started on first use)."""
        worker = self._workers.get(tp)
        if worker is None:
            worker = self._workers[tp] = _Worker()
            worker.task = asyncio.create_task(self._work(tp, worker), name=f"partition {tp}")
        worker.queue.extend(records)
        worker.wake.set()

    def backlogged(self) -> set[TopicPartition]:
        """Partitions whose queue is at or above the limit: pause fetching them."""
        return {tp for tp, w in self._workers.items() if len(w.queue) >= self._max_queued}

    def crashed(self) -> BaseException | None:
        """The error of a worker that ended unexpectedly (a bug: the runner must not go on)."""
        for worker in self._workers.values():
            task = worker.task
            if task is not None and task.done() and not task.cancelled():
                error = task.exception()
                if error is not None:
                    return error
        return None

    async def release(self, partitions: Iterable[TopicPartition], grace_s: float) -> None:
        """Stop the workers of ``partitions`` (revoked, or all at shutdown): queued records are
        dropped (uncommitted, so delivered again to whoever owns the partition next); the
        message in hand may finish within ``grace_s``, then it is cancelled."""
        workers = [(tp, self._workers.pop(tp)) for tp in list(partitions) if tp in self._workers]
        tasks: list[asyncio.Task[None]] = []
        for _, worker in workers:
            worker.stopping = True
            worker.queue.clear()
            worker.wake.set()
            if worker.task is not None:
                tasks.append(worker.task)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            log.warning("abandoned the in-flight message of %s; it will be redelivered", task)
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    @property
    def partitions(self) -> set[TopicPartition]:
        return set(self._workers)

    async def _work(self, tp: TopicPartition, worker: _Worker) -> None:
        while not worker.stopping:
            if not worker.queue:
                worker.wake.clear()
                await worker.wake.wait()
                continue
            record = worker.queue.popleft()
            await self._handle(record)
            # Even when revoked meanwhile: the runner commits it before giving the partition up.
            self._done(tp, record.offset + 1)
