"""One replay session's run: read matching events in order, pace them, publish, keep progress.

The runner owns its session document while it runs (``owner`` + a lease renewed with every
progress write), so it is the one writer of status and progress. Admin requests (pause,
resume, cancel) reach it through the control store, which it reads between two messages (at
once when the request came to this instance, else within ``control_poll_s``). Progress,
including the cursor (``occurred_at`` + ``event_id`` of the last event handled), is persisted
at least every ``progress_interval_s``, at every status change and when the process stops; a
stopped or crashed run is picked up from its cursor by the pool of whichever instance finds it
orphaned (its own, at the next start).

Tracing: one root span ``event_replay.session`` per run (a replay is its own trace), one
``event_replay.batch`` child per batch, and a PRODUCER span per message (by the publisher)
linked to the original event's producer span.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from integr8scode_event_replay.domain.errors import (
    OwnershipLostError,
    PublishFailedError,
    ReplayError,
    StoreUnavailableError,
)
from integr8scode_event_replay.domain.messages import (
    ReplayMessage,
    StoredEvent,
    UnreplayableEventError,
    replay_message,
)
from integr8scode_event_replay.domain.pacing import spacing_s
from integr8scode_event_replay.domain.ports import (
    ControlStore,
    EventSource,
    ReplayPublisher,
    SessionStore,
)
from integr8scode_event_replay.domain.sessions import Cursor, ReplaySession, SessionStatus
from integr8scode_event_replay.slots import Slots
from integr8scode_events.tracing import EVENTS_BATCH_COUNT

log = logging.getLogger(__name__)

SESSION_SPAN = "event_replay.session"
BATCH_SPAN = "event_replay.batch"
SESSION_ID = "replay.session.id"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunPolicy:
    """The settings a run follows (see ``config.ReplaySettings``)."""

    batch_size: int = 100
    max_wait_s: float = 30.0
    publish_attempts: int = 3
    publish_backoff_s: float = 0.2
    max_consecutive_failures: int = 3
    progress_interval_s: float = 1.0
    control_poll_s: float = 0.25
    lease_s: float = 15.0
    publish_window: int = 1

    @property
    def save_interval_s(self) -> float:
        return min(self.progress_interval_s, self.lease_s / 3)


@dataclass(frozen=True)
class RunnerDeps:
    """What every runner of this process shares."""

    sessions: SessionStore
    controls: ControlStore
    events: EventSource
    publisher: ReplayPublisher
    slots: Slots
    policy: RunPolicy
    tracer: trace.Tracer
    instance_id: str
    clock: Callable[[], datetime] = utcnow


@dataclass(frozen=True)
class _Ahead:
    """The next page, being read while the current one is published."""

    after: Cursor
    limit: int
    read: asyncio.Task[Sequence[StoredEvent]]

    async def drop(self) -> None:
        self.read.cancel()
        await asyncio.gather(self.read, return_exceptions=True)


@dataclass(frozen=True)
class _InFlight:
    """An event of a windowed page: handed over and awaiting its acknowledgement (or skipped,
    ``message`` None)."""

    stored: StoredEvent
    message: ReplayMessage | None
    publish: asyncio.Task[PublishFailedError | None] | None

    @property
    def settled(self) -> bool:
        return self.publish is None or self.publish.done()


class _CancelledError(Exception):
    pass


class _StoppingError(Exception):
    pass


class _FailedError(Exception):
    pass


class SessionRunner:
    """Runs one session until it ends, or until ``stop()`` (then it releases the session)."""

    def __init__(
        self, session: ReplaySession, deps: RunnerDeps, *, creator: SpanContext | None = None
    ) -> None:
        self.session = session
        self._d = deps
        self._p = deps.policy
        self._creator = creator
        self._wake = asyncio.Event()
        self._stopping = False
        self._poll_now = True
        self._desired: SessionStatus | None = None
        self._last_poll = -math.inf
        self._last_save = -math.inf
        self._last_publish: float | None = None
        self._span: trace.Span = trace.INVALID_SPAN

    @property
    def session_id(self) -> str:
        return self.session.id

    def poke(self) -> None:
        """A control request for this session was stored: read it before the next message."""
        self._poll_now = True
        self._wake.set()

    def stop(self) -> None:
        """Stop after the message in flight, persist the cursor and release the session."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Run to the end; never raises (a bug ends the session ``failed``)."""
        try:
            await self._run()
        except OwnershipLostError as exc:
            log.warning("session %s: %s; leaving it to its new owner", self.session_id, exc)
        except StoreUnavailableError as exc:
            log.warning(
                "session %s stopped: %s; it resumes from its cursor once its lease runs out",
                self.session_id,
                exc,
            )
        except Exception as exc:  # outermost loop of a session: record it, end the session
            log.exception("session %s failed", self.session_id)
            try:
                await self._finish(SessionStatus.FAILED, f"{type(exc).__name__}: {exc}")
            except ReplayError as inner:
                log.warning("could not record the failure of %s: %s", self.session_id, inner)

    # -- the run ------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._acquire_slot()
        except _CancelledError:
            await self._finish(SessionStatus.CANCELLED)
            return
        except _StoppingError:
            await self._release()
            return
        try:
            await self._run_with_slot()
        finally:
            self._d.slots.release()

    async def _acquire_slot(self) -> None:
        while not self._d.slots.try_acquire():
            await self._read_controls()  # a created session can be cancelled, not paused
            await self._save()
            await self._sleep(self._p.control_poll_s)

    async def _run_with_slot(self) -> None:
        session = self.session
        links = [Link(self._creator)] if self._creator is not None else []
        with self._d.tracer.start_as_current_span(
            SESSION_SPAN,
            context=Context(),  # a replay is its own trace; its messages link to the originals
            kind=SpanKind.INTERNAL,
            links=links,
            attributes={
                SESSION_ID: session.id,
                "replay.target": session.spec.target.topic or "original",
                "replay.speed": session.spec.speed.label,
                "replay.max_events": session.spec.max_events,
                "replay.reprocess": session.spec.reprocess,
                "replay.resumed_from_cursor": session.cursor is not None,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            self._span = span
            context = span.get_span_context()
            if context.is_valid:
                session.trace_id = trace.format_trace_id(context.trace_id)
            if session.status is SessionStatus.CREATED:
                session.transition(SessionStatus.RUNNING, self._d.clock())
            await self._save(force=True)
            # A child of the session span, so its Mongo span is in the replay's trace.
            counting = (
                asyncio.create_task(self._count(), name=f"count {session.id}")
                if session.matched is None
                else None
            )
            try:
                exhausted = await self._replay_batches()
            except _CancelledError:
                span.add_event("cancelled")
                await self._finish(SessionStatus.CANCELLED)
            except _FailedError as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                await self._finish(SessionStatus.FAILED, str(exc))
            except _StoppingError:
                span.add_event("stopped; released with its cursor")
                await self._release()
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise
            else:
                await self._settle_count(counting, exhausted=exhausted)
                await self._finish(SessionStatus.COMPLETED)
            finally:
                if counting is not None and not counting.done():
                    counting.cancel()
                    await asyncio.gather(counting, return_exceptions=True)
                if session.matched is not None:
                    span.set_attribute("replay.matched", session.matched)
                span.set_attributes(
                    {
                        "replay.published": session.published,
                        "replay.skipped": session.skipped,
                        "replay.failed": session.failed,
                        "replay.status": session.status.value,
                    }
                )

    async def _replay_batches(self) -> bool:
        """Replay until the cap or the last match; True when every match was handled.

        While a full page is being published, the next one is already being read (the store's
        work and the publishing overlap); it is used only if the run goes on from where that
        read started, else dropped."""
        session = self.session
        ahead: _Ahead | None = None
        try:
            while True:
                await self._controls()
                limit = min(self._p.batch_size, session.remaining_allowed)
                if limit <= 0:
                    return False  # the cap
                if ahead is not None and ahead.after == session.cursor and ahead.limit == limit:
                    page = await ahead.read
                else:
                    if ahead is not None:
                        await ahead.drop()
                    page = await self._d.events.page(session.spec.filters, session.cursor, limit)
                ahead = None
                if not page:
                    return True
                following = min(self._p.batch_size, session.remaining_allowed - len(page))
                if len(page) == limit and following > 0:
                    ahead = self._read_ahead(page[-1].cursor, following)
                with self._d.tracer.start_as_current_span(
                    BATCH_SPAN,
                    attributes={EVENTS_BATCH_COUNT: len(page), SESSION_ID: session.id},
                ):
                    if self._p.publish_window > 1 and session.spec.speed.factor is None:
                        await self._replay_windowed(page)
                    else:
                        await self._replay_one_by_one(page)
                if len(page) < limit:
                    return True
        finally:
            if ahead is not None:
                await ahead.drop()

    def _read_ahead(self, after: Cursor, limit: int) -> _Ahead:
        read = asyncio.create_task(self._d.events.page(self.session.spec.filters, after, limit))
        return _Ahead(after, limit, read)

    # -- the count ----------------------------------------------------------------------------

    async def _count(self) -> None:
        """Fill in ``matched`` beside the replay; the next progress write persists it."""
        try:
            matched = await self._d.events.count(self.session.spec.filters)
        except StoreUnavailableError as exc:
            log.warning("session %s: its events could not be counted: %s", self.session_id, exc)
            return
        if self.session.matched is None:
            self.session.matched = matched

    async def _settle_count(self, counting: asyncio.Task[None] | None, *, exhausted: bool) -> None:
        """A completed session says how many matched: every match was handled (so they are
        what it processed), or it stopped at the cap and its count is awaited."""
        if self.session.matched is not None:
            return
        if exhausted:
            self.session.matched = self.session.processed
        elif counting is not None:
            await counting

    async def _replay_one_by_one(self, page: Sequence[StoredEvent]) -> None:
        """Paced, or a window of 1: each event acknowledged (or given up) before the next."""
        for stored in page:
            await self._controls()
            await self._pace(stored)
            message = self._message(stored)
            if message is not None:
                await self._deliver(message)
            self.session.cursor = stored.cursor
            await self._save()

    async def _replay_windowed(self, page: Sequence[StoredEvent]) -> None:
        """At speed max: up to ``publish_window`` events awaiting their acknowledgement. Each
        is handed to the producer only after the one before it, so the partitions keep the
        events' order; they are settled (counted, the cursor moved past them) in that order.
        A pause first settles what is in flight; a cancel, a stop or a failed session settles
        what was acknowledged (see ``_drain``)."""
        window: deque[_InFlight] = deque()
        try:
            for stored in page:
                if await self._read_controls() is SessionStatus.PAUSED:
                    while window:
                        await self._settle(window.popleft())
                await self._controls()
                window.append(await self._hand_over(stored))
                while window and (len(window) >= self._p.publish_window or window[0].settled):
                    await self._settle(window.popleft())
            while window:
                await self._settle(window.popleft())
        finally:
            await self._drain(window)

    async def _drain(self, window: deque[_InFlight]) -> None:
        """The run ends with events in flight: the acknowledged ones at the head are counted
        and the cursor moves past them; from the first that was not, nothing is counted and
        the rest are no longer awaited (a later run from the cursor publishes them again: at
        least once)."""
        try:
            while window:
                head = window[0]
                error = None if head.publish is None else await head.publish
                if error is not None:
                    break
                window.popleft()
                if head.publish is not None:
                    self._published()
                self.session.cursor = head.stored.cursor
        finally:
            for rest in window:
                if rest.publish is not None:
                    rest.publish.cancel()
            await asyncio.gather(
                *(r.publish for r in window if r.publish is not None), return_exceptions=True
            )
            window.clear()

    async def _hand_over(self, stored: StoredEvent) -> _InFlight:
        message = self._message(stored)
        if message is None:
            return _InFlight(stored, None, None)
        taken = asyncio.get_running_loop().create_future()

        def took(*_: object) -> None:
            if not taken.done():
                taken.set_result(None)

        publish = asyncio.create_task(self._first_attempt(message, took))
        publish.add_done_callback(took)  # refused before the hand-over: settled as it is
        try:
            await taken
        except BaseException:  # cancelled while handing it over: not left running unowned
            publish.cancel()
            await asyncio.gather(publish, return_exceptions=True)
            raise
        return _InFlight(stored, message, publish)

    async def _first_attempt(
        self, message: ReplayMessage, handed_over: Callable[[], object]
    ) -> PublishFailedError | None:
        try:
            await self._d.publisher.publish(message, handed_over)
        except PublishFailedError as exc:
            return exc
        return None

    async def _settle(self, pending: _InFlight) -> None:
        if pending.message is not None and pending.publish is not None:
            error = await pending.publish
            if error is None:
                self._published()
            else:
                # Retried on its own: it lands behind what was handed over after it.
                await self._deliver(pending.message, attempts_made=1, error=error)
        self.session.cursor = pending.stored.cursor
        await self._save()

    def _message(self, stored: StoredEvent) -> ReplayMessage | None:
        """The message that replays ``stored``; None (counted as skipped) if it can't be."""
        session = self.session
        try:
            return replay_message(
                stored, session.spec.target, session.id, reprocess=session.spec.reprocess
            )
        except UnreplayableEventError as exc:
            session.skipped += 1
            session.last_error = exc.detail
            self._span.add_event("skipped", {"event.id": stored.event_id, "reason": exc.detail})
            log.warning("session %s skipped %s: %s", session.id, stored.event_id, exc.detail)
            return None

    async def _deliver(
        self,
        message: ReplayMessage,
        *,
        attempts_made: int = 0,
        error: PublishFailedError | None = None,
    ) -> None:
        """Publish with the attempts left (backing off between them), then count it."""
        for attempt in range(attempts_made + 1, self._p.publish_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._p.publish_backoff_s * 2 ** (attempt - 2))
            try:
                await self._d.publisher.publish(message)
            except PublishFailedError as exc:
                error = exc
                continue
            self._published()
            return
        self._failed(message, error)

    def _published(self) -> None:
        self.session.published += 1
        self.session.consecutive_failures = 0
        self._last_publish = asyncio.get_running_loop().time()

    def _failed(self, message: ReplayMessage, error: PublishFailedError | None) -> None:
        session = self.session
        session.failed += 1
        session.consecutive_failures += 1
        session.last_error = f"event {message.event.event_id} was not acknowledged: {error}"
        self._last_publish = asyncio.get_running_loop().time()
        log.error("session %s: %s", session.id, session.last_error)
        if session.consecutive_failures >= self._p.max_consecutive_failures:
            raise _FailedError(
                f"{session.consecutive_failures} events in a row were not acknowledged; "
                f"last: {error}"
            )

    async def _pace(self, stored: StoredEvent) -> None:
        session = self.session
        previous = session.cursor.occurred_at if session.cursor else None
        spacing = spacing_s(previous, stored.occurred_at, session.spec.speed, self._p.max_wait_s)
        if spacing <= 0:
            return
        loop = asyncio.get_running_loop()
        due = (self._last_publish if self._last_publish is not None else loop.time()) + spacing
        while (left := due - loop.time()) > 0:
            await self._sleep(min(left, self._p.control_poll_s))
            await self._controls()  # a pause in here waits; after it the wait is served
            await self._save()

    # -- controls -----------------------------------------------------------------------------

    async def _read_controls(self) -> SessionStatus | None:
        if self._stopping:
            raise _StoppingError
        now = asyncio.get_running_loop().time()
        if self._poll_now or now - self._last_poll >= self._p.control_poll_s:
            self._poll_now = False
            self._last_poll = now
            with suppress_instrumentation():  # housekeeping: no Mongo span per poll
                self._desired = await self._d.controls.requested(self.session_id)
        if self._desired is SessionStatus.CANCELLED:
            raise _CancelledError
        return self._desired

    async def _controls(self) -> None:
        """Apply what an admin asked for: cancel (raises), pause (waits here until resumed)."""
        session = self.session
        desired = await self._read_controls()
        if session.status is SessionStatus.RUNNING and desired is SessionStatus.PAUSED:
            session.transition(SessionStatus.PAUSED, self._d.clock())
            self._span.add_event("paused")
            log.info("session %s paused", session.id)
            await self._save(force=True)
        while session.status is SessionStatus.PAUSED:
            if desired is SessionStatus.RUNNING:
                session.transition(SessionStatus.RUNNING, self._d.clock())
                self._span.add_event("resumed")
                log.info("session %s resumed", session.id)
                await self._save(force=True)
                return
            await self._sleep(self._p.control_poll_s)
            await self._save()  # keeps the lease while paused
            desired = await self._read_controls()

    # -- persistence --------------------------------------------------------------------------

    async def _save(self, *, force: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        if not force and now - self._last_save < self._p.save_interval_s:
            return
        session = self.session
        wall = self._d.clock()
        session.updated_at = wall
        session.owner = self._d.instance_id
        session.lease_until = wall + timedelta(seconds=self._p.lease_s)
        if force:
            await self._d.sessions.save(session, self._d.instance_id)
        else:
            # Progress and lease renewals, every few seconds of a long or paused run, would
            # bury the session's trace in Mongo spans; status changes stay traced.
            with suppress_instrumentation():
                await self._d.sessions.save(session, self._d.instance_id)
        self._last_save = now

    async def _finish(self, status: SessionStatus, error: str | None = None) -> None:
        session = self.session
        if session.terminal:
            return
        session.transition(status, self._d.clock())
        if error is not None:
            session.last_error = error
        await self._let_go()
        log.info(
            "session %s %s: published %d, skipped %d, failed %d",
            session.id,
            status.value,
            session.published,
            session.skipped,
            session.failed,
        )

    async def _release(self) -> None:
        self.session.updated_at = self._d.clock()
        await self._let_go()
        log.info("session %s released at its cursor", self.session_id)

    async def _let_go(self) -> None:
        session = self.session
        session.owner = None
        session.lease_until = None
        await self._d.sessions.save(session, self._d.instance_id)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, or less when poked or stopped."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            return
        self._wake.clear()
