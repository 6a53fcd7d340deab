"""What the admin API does with sessions: create (or dry-run), read, pause, resume, cancel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext

from integr8scode_event_replay.domain.errors import (
    InvalidTransitionError,
    QueryTimeoutError,
    SessionNotFoundError,
)
from integr8scode_event_replay.domain.messages import StoredEvent
from integr8scode_event_replay.domain.ports import ControlStore, EventSource, SessionStore
from integr8scode_event_replay.domain.sessions import (
    Action,
    ReplaySession,
    SessionStatus,
    check_action,
)
from integr8scode_event_replay.domain.spec import ReplayFilters, SpecLimits, build_spec
from integr8scode_event_replay.pool import SessionPool
from integr8scode_event_replay.runner import SESSION_ID, SESSION_SPAN

_ACK_POLL_S = 0.1


@dataclass(frozen=True)
class NewSession:
    """A create request as the edge parsed it (shape checked; rules not yet)."""

    filters: ReplayFilters
    target_topic: str | None = None
    speed_factor: float | None = None
    max_events: int | None = None
    dry_run: bool = False
    reprocess: bool = False


class ReplayService:
    """Sessions for the admin API, in terms of the ports and the pool."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        controls: ControlStore,
        events: EventSource,
        pool: SessionPool,
        limits: SpecLimits,
        preview_size: int,
        dry_run_budget_s: float,
        lease_s: float,
        instance_id: str,
        control_ack_timeout_s: float,
        clock: Callable[[], datetime],
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(
            "integr8scode_event_replay", tracer_provider=tracer_provider
        )
        self._sessions = sessions
        self._controls = controls
        self._events = events
        self._pool = pool
        self._limits = limits
        self._preview_size = preview_size
        self._dry_run_budget_s = dry_run_budget_s
        self._lease = timedelta(seconds=lease_s)
        self._instance_id = instance_id
        self._ack_timeout_s = control_ack_timeout_s
        self._clock = clock

    async def create(
        self, request: NewSession, created_by: str, creator: SpanContext | None = None
    ) -> ReplaySession:
        """Validate, then either answer a dry run (a count and a preview within the dry-run
        budget, nothing published) or store the session and start it. A session is not
        counted here: its runner counts in the background (``matched`` is None until then),
        because on FerretDB a count is a scan of the whole store."""
        now = self._clock()
        spec = build_spec(
            filters=request.filters,
            target_topic=request.target_topic,
            speed_factor=request.speed_factor,
            max_events=request.max_events,
            dry_run=request.dry_run,
            reprocess=request.reprocess,
            limits=self._limits,
            now=now,
        )
        session = ReplaySession(
            id=uuid.uuid4().hex,
            spec=spec,
            status=SessionStatus.CREATED,
            created_at=now,
            created_by=created_by,
            matched=None,
            updated_at=now,
        )
        if spec.dry_run:
            with self._tracer.start_as_current_span(
                SESSION_SPAN,
                context=Context(),  # a replay is its own trace, a dry one too
                links=[Link(creator)] if creator is not None else [],
                attributes={
                    SESSION_ID: session.id,
                    "replay.dry_run": True,
                    "replay.target": spec.target.topic or "original",
                    "replay.max_events": spec.max_events,
                },
            ) as span:
                if (context := span.get_span_context()).is_valid:
                    session.trace_id = trace.format_trace_id(context.trace_id)
                await self._dry_run(session)
                if session.matched is not None:
                    span.set_attribute("replay.matched", session.matched)
                    span.set_attribute(
                        "replay.matched_is_lower_bound", session.matched_is_lower_bound
                    )
            session.transition(SessionStatus.COMPLETED, self._clock())
            await self._sessions.insert(session)
            return session
        session.owner = self._instance_id
        session.lease_until = now + self._lease
        await self._sessions.insert(session)
        self._pool.launch(session, creator)
        return session

    async def _dry_run(self, session: ReplaySession) -> None:
        """Count and preview side by side, each within the budget. The count stops one past
        the cap (enough for ``planned`` and ``capped``); one cut short says "at least"."""
        spec, budget = session.spec, self._dry_run_budget_s
        counted, first = await asyncio.gather(
            self._events.count_up_to(spec.filters, spec.max_events + 1, budget),
            self._preview(session),
        )
        session.matched = counted.n
        session.matched_is_lower_bound = not counted.complete
        if first is None:
            session.preview_complete = False
            return
        if len(first) < self._preview_size:  # the preview saw every match: an exact count
            session.matched, session.matched_is_lower_bound = len(first), False
        elif not counted.complete and len(first) > counted.n:  # the better lower bound
            session.matched = len(first)
        planned = session.planned or 0
        session.preview = [stored.preview(spec.target) for stored in first[:planned]]

    async def _preview(self, session: ReplaySession) -> Sequence[StoredEvent] | None:
        try:
            return await self._events.page(
                session.spec.filters, None, self._preview_size, self._dry_run_budget_s
            )
        except QueryTimeoutError:
            return None

    async def get(self, session_id: str) -> ReplaySession:
        session = await self._sessions.get(session_id)
        if session is None:
            raise SessionNotFoundError(f"no replay session {session_id!r}")
        return session

    async def list_page(
        self, status: SessionStatus | None, limit: int, offset: int
    ) -> tuple[list[ReplaySession], int]:
        return await self._sessions.list_page(status, limit, offset)

    async def act(self, session_id: str, action: Action) -> ReplaySession:
        """Ask the session's runner to pause, resume or cancel; wait (briefly) until it did.
        The answer is the session as it then is: the request is stored either way and applies
        between two messages (an orphaned session applies it when it is adopted)."""
        session = await self.get(session_id)
        check_action(session.status, action, dry_run=session.spec.dry_run)
        pending = await self._controls.requested(session_id)
        if pending is SessionStatus.CANCELLED:
            raise InvalidTransitionError(f"session {session_id} is being cancelled")
        await self._controls.request(session_id, action.desired)
        self._pool.poke(session_id)
        return await self._applied(session_id, action.desired)

    async def _applied(self, session_id: str, desired: SessionStatus) -> ReplaySession:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ack_timeout_s
        while True:
            session = await self.get(session_id)
            if session.status is desired or session.terminal or loop.time() >= deadline:
                return session
            await asyncio.sleep(_ACK_POLL_S)
