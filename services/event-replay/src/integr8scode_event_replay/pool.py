"""The sessions this instance runs: launched by the admin API, adopted when orphaned.

A session is orphaned when its owner released it at shutdown or its owner's lease ran out (a
crash). The pool looks for such sessions at start-up and every ``recovery_interval_s``; of
several instances that find the same one, one adopts it (``SessionStore.take_over``) and
resumes it from its cursor. The recovery pass is housekeeping and runs untraced (it was a
``find replay_sessions`` root trace every few seconds); an adopted session runs in a clean
context and traces its run as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from opentelemetry.trace import SpanContext

from integr8scode_event_replay.domain.errors import ReplayError
from integr8scode_event_replay.domain.ports import SessionStore
from integr8scode_event_replay.domain.sessions import ReplaySession
from integr8scode_event_replay.runner import SessionRunner
from integr8scode_telemetry import untraced_task

log = logging.getLogger(__name__)

RunnerFactory = Callable[[ReplaySession, SpanContext | None], SessionRunner]


class SessionPool:
    """Runs sessions as tasks of this process; ``run`` is the recovery loop."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        runner_factory: RunnerFactory,
        instance_id: str,
        lease_s: float,
        recovery_interval_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._factory = runner_factory
        self._instance_id = instance_id
        self._lease = timedelta(seconds=lease_s)
        self._interval = recovery_interval_s
        self._clock = clock
        self._runners: dict[str, SessionRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()

    @property
    def running(self) -> int:
        return len(self._tasks)

    def launch(self, session: ReplaySession, creator: SpanContext | None = None) -> None:
        """Run ``session`` (owned by this instance) in the background."""
        if session.id in self._tasks or self._stopping.is_set():
            return  # at shutdown: adopted by the next instance once its lease runs out
        runner = self._factory(session, creator)
        # A clean context: the run is not part of the admin request that started it.
        task = asyncio.create_task(
            runner.run(), name=f"replay-{session.id}", context=contextvars.Context()
        )
        self._runners[session.id] = runner
        self._tasks[session.id] = task
        task.add_done_callback(lambda _: self._forget(session.id))

    def poke(self, session_id: str) -> None:
        """Tell the local runner of ``session_id`` (if any) that a control request is stored."""
        runner = self._runners.get(session_id)
        if runner is not None:
            runner.poke()

    def is_running(self, session_id: str) -> bool:
        return session_id in self._tasks

    async def run(self) -> None:
        """Adopt orphaned sessions now and every ``recovery_interval_s`` until ``stop()``."""
        while not self._stopping.is_set():
            try:
                adopted = await self.recover()
            except ReplayError as exc:
                log.warning("looking for orphaned replay sessions failed: %s", exc)
            else:
                if adopted:
                    log.info("adopted %d orphaned replay session(s)", adopted)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    @untraced_task
    async def recover(self) -> int:
        """Adopt the orphaned sessions this instance does not run; returns how many."""
        if self._stopping.is_set():
            return 0
        adopted = 0
        for session in await self._sessions.orphaned(self._clock()):
            if session.id in self._tasks:
                continue
            lease_until = self._clock() + self._lease
            if not await self._sessions.take_over(session, self._instance_id, lease_until):
                continue
            current = await self._sessions.get(session.id)
            if current is None or current.owner != self._instance_id or current.terminal:
                continue
            log.info(
                "resuming replay session %s (%s) from %s",
                current.id,
                current.status.value,
                current.cursor or "the start",
            )
            self.launch(current)
            adopted += 1
        return adopted

    def stop(self) -> None:
        """Stop the recovery loop and ask every runner to release its session."""
        self._stopping.set()
        for runner in list(self._runners.values()):
            runner.stop()

    async def drain(self, grace_s: float) -> None:
        """Wait for the runners to release their sessions; cancel what is left after
        ``grace_s`` (those resume once their lease runs out)."""
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            log.warning("replay %s did not stop within %.0fs; cancelling", task.get_name(), grace_s)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, session_id: str) -> None:
        self._runners.pop(session_id, None)
        self._tasks.pop(session_id, None)
