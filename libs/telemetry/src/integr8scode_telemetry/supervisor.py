"""Long-running tasks of a service (consumer loops, schedulers), kept alive and stopped cleanly.

A service adds named task factories; ``run`` starts them in one task group and restarts a task
that failed with capped, jittered backoff (a dependency being down is expected, not fatal), so
the process stays up and reports the problem through ``/health/ready``. ``stop`` asks every
task's owner to finish (their own ``stop`` callbacks), then cancels what is left after a grace
period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    name: str
    factory: Callable[[], Awaitable[None]]
    on_stop: Callable[[], None] | None
    running: bool = False
    failures: int = 0
    last_error: str | None = None


@dataclass
class Supervisor:
    """Runs and restarts a service's background tasks; see the module docstring."""

    max_backoff_s: float = 10.0
    _entries: list[_Entry] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def add(
        self,
        name: str,
        factory: Callable[[], Awaitable[None]],
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        """Register a task: ``factory()`` runs it until done; ``on_stop`` asks it to finish."""
        self._entries.append(_Entry(name, factory, on_stop))

    def start(self) -> None:
        """Start every registered task in the background."""
        self._tasks = [
            asyncio.create_task(self._keep_alive(entry), name=entry.name) for entry in self._entries
        ]

    async def stop(self, grace_s: float = 15.0) -> None:
        """Ask each task to finish, wait up to ``grace_s``, then cancel the rest."""
        self._stopping.set()
        for entry in self._entries:
            if entry.on_stop is not None:
                entry.on_stop()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace_s)
        for task in pending:
            log.warning("task %s did not stop within %.0fs; cancelling", task.get_name(), grace_s)
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def healthy(self) -> bool:
        """True while every task runs (for a readiness probe)."""
        return all(entry.running for entry in self._entries)

    async def check(self) -> bool:
        """The readiness check: ``healthy()`` as the async check a ``HealthProbe`` runs."""
        return self.healthy()

    def status(self) -> dict[str, str | None]:
        return {
            e.name: None if e.running else (e.last_error or "not running") for e in self._entries
        }

    async def _keep_alive(self, entry: _Entry) -> None:
        while not self._stopping.is_set():
            entry.running = True
            try:
                await entry.factory()
            except asyncio.CancelledError:
                entry.running = False
                raise
            except Exception as exc:
                entry.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("task %s failed", entry.name)
            else:
                if self._stopping.is_set():
                    break
                # A task that returns on its own while we are not stopping is restarted too.
                entry.last_error = "returned unexpectedly"
            entry.running = False
            entry.failures += 1
            delay = min(self.max_backoff_s, 0.5 * 2 ** min(entry.failures, 10))
            delay = random.uniform(delay / 2, delay)  # noqa: S311 - jitter
            log.warning("restarting task %s in %.1fs", entry.name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        entry.running = False
