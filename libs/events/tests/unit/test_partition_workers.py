"""Partition workers: order per partition, independence across, backlog, release."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from tests.polling import eventually

from integr8scode_events.kafka.partition_workers import PartitionWorkers

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


def _records(*offsets: int) -> list[Any]:
    return [SimpleNamespace(offset=o) for o in offsets]


class _Recorder:
    def __init__(self) -> None:
        self.handled: list[int] = []
        self.done: dict[TopicPartition, int] = {}
        self.gate = asyncio.Event()
        self.blocking: set[int] = set()
        self.started: set[int] = set()

    async def handle(self, record: Any) -> None:
        self.started.add(record.offset)
        if record.offset in self.blocking:
            await self.gate.wait()
        self.handled.append(record.offset)

    def mark(self, tp: TopicPartition, next_offset: int) -> None:
        self.done[tp] = next_offset


async def _until(check: Any) -> None:
    async def holds() -> bool:
        return bool(check())

    await eventually(holds, timeout_s=5, interval_s=0.005)


async def test_a_blocked_partition_does_not_hold_up_another() -> None:
    rec = _Recorder()
    rec.blocking = {10}
    workers = PartitionWorkers(rec.handle, rec.mark, max_queued=100)
    workers.add(P0, _records(10, 11))
    workers.add(P1, _records(20, 21))
    await _until(lambda: rec.done.get(P1) == 22)
    assert rec.handled == [20, 21]
    assert P0 not in rec.done
    rec.gate.set()
    await _until(lambda: rec.done.get(P0) == 12)
    assert rec.handled == [20, 21, 10, 11]
    await workers.release(workers.partitions, grace_s=1)
    assert workers.partitions == set()


async def test_backlog_is_reported_for_pausing() -> None:
    rec = _Recorder()
    rec.blocking = {0}
    workers = PartitionWorkers(rec.handle, rec.mark, max_queued=3)
    workers.add(P0, _records(0, 1, 2, 3, 4))
    await _until(lambda: 0 in rec.started)
    assert workers.backlogged() == {P0}  # 4 queued behind the one in hand
    rec.gate.set()
    await _until(lambda: rec.done.get(P0) == 5)
    assert workers.backlogged() == set()
    await workers.release({P0}, grace_s=1)


async def test_release_drops_the_queue_and_cancels_after_the_grace() -> None:
    rec = _Recorder()
    rec.blocking = {0}
    workers = PartitionWorkers(rec.handle, rec.mark, max_queued=100)
    workers.add(P0, _records(0, 1, 2))
    await _until(lambda: 0 in rec.started)
    await workers.release({P0}, grace_s=0.05)
    assert rec.handled == []  # the one in hand was abandoned, the queued ones dropped
    assert rec.done == {}  # nothing to commit: all of it is delivered again
    assert workers.crashed() is None
