"""The retry scheduler: polls for due records and makes their next attempt, until stopped.

Runs under the service's ``Supervisor``. Each tick reads at most ``batch_size`` due records
(one simple query: status + ``next_attempt_at``; FerretDB scans for anything but ``_id``, so
it is bounded) and makes their attempts, ``concurrency`` at a time. All state is in Mongo: a
restarted service picks up whatever became due while it was down. The idle poll runs with
client instrumentation suppressed, so it does not put a root span into Jaeger twice a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from integr8scode_dlq_processor.domain.errors import DlqError
from integr8scode_dlq_processor.domain.records import DeadLetter
from integr8scode_dlq_processor.retries import RetryRunner
from integr8scode_telemetry import untraced

log = logging.getLogger(__name__)


class RetryScheduler:
    def __init__(
        self,
        runner: RetryRunner,
        *,
        poll_interval_s: float,
        batch_size: int,
        concurrency: int,
    ) -> None:
        self._runner = runner
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.attempts = 0

    def stop(self) -> None:
        """Finish the attempts in flight, start no new ones."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Look for due records now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            found = 0
            try:
                found = await self.tick()
            except DlqError as exc:  # Mongo away: keep polling, the probe says so meanwhile
                log.warning("retry scheduler: %s", exc.detail)
            if found >= self._batch_size:
                continue  # more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
            self._wake.clear()

    async def tick(self) -> int:
        """One pass: the attempts of what is due now; returns how many records were due."""
        # Only the read: the attempts below run in tasks that must not inherit the suppression
        # (each continues its message's trace).
        with untraced():
            due = await self._runner.due(self._batch_size)
        if not due:
            return 0
        async with asyncio.TaskGroup() as group:
            for record in due:
                if self._stopping.is_set():
                    break
                await self._slots.acquire()
                group.create_task(self._attempt(record))
        return len(due)

    async def _attempt(self, record: DeadLetter) -> None:
        try:
            await self._runner.attempt(record)
            self.attempts += 1
        except DlqError as exc:
            # The record stays due (or its claim lapses): a later tick tries again.
            log.warning("dead letter %s: attempt not made: %s", record.id, exc.detail)
        finally:
            self._slots.release()
