"""The supervisor's readiness check follows its tasks: ready while every one runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from integr8scode_telemetry import Supervisor


async def _until(condition: Callable[[], bool], deadline_s: float = 5.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_ready_while_every_task_runs_and_not_after_one_fails() -> None:
    supervisor = Supervisor(max_backoff_s=30.0)
    stop = asyncio.Event()
    fail = asyncio.Event()

    async def steady() -> None:
        await stop.wait()

    async def fragile() -> None:
        await fail.wait()
        raise RuntimeError("broker gone")

    supervisor.add("steady", steady, on_stop=stop.set)
    supervisor.add("fragile", fragile, on_stop=fail.set)
    assert await supervisor.check() is False  # nothing started yet
    supervisor.start()
    try:
        await _until(supervisor.healthy)
        assert await supervisor.check() is True
        fail.set()
        await _until(lambda: not supervisor.healthy())
        assert await supervisor.check() is False
        assert supervisor.status()["fragile"] == "RuntimeError: broker gone"
    finally:
        await supervisor.stop(grace_s=2.0)
