"""The timeline use case: the caller's execution, its trace, and where the time went."""

from __future__ import annotations

from typing import Protocol

from integr8scode_api.domain.executions import ExecutionView
from integr8scode_api.domain.timeline import Timeline, derive_timeline, unavailable
from integr8scode_api.domain.trace import TraceSource
from integr8scode_api.domain.users import User

NO_TRACE_ID = "no trace id was recorded for this execution (tracing was off when it was accepted)"
NOT_FOUND = (
    "the trace is not in the trace backend: not exported yet (try again in a few seconds), "
    "sampled out, or tracing was off"
)


class ExecutionReader(Protocol):
    """What the timeline needs of the executions (``ExecutionService`` in the app)."""

    async def get(self, user: User, execution_id: str) -> ExecutionView:
        """The caller's execution (owner or admin); ``NotFoundError`` for anyone else."""
        ...


class TimelineService:
    def __init__(self, executions: ExecutionReader, traces: TraceSource) -> None:
        self._executions = executions
        self._traces = traces

    async def timeline(self, user: User, execution_id: str) -> Timeline:
        """404 (via ``get``) for an execution that is not the caller's; 503 when the trace
        backend does not answer; otherwise a timeline, ``complete`` or saying what's missing."""
        view = await self._executions.get(user, execution_id)
        trace_id = view.trace_id
        if not trace_id:
            return unavailable(execution_id, None, NO_TRACE_ID, None)
        link = self._traces.trace_url(trace_id)
        spans = await self._traces.trace(trace_id)
        if spans is None:
            return unavailable(execution_id, trace_id, NOT_FOUND, link)
        return derive_timeline(
            execution_id,
            trace_id,
            spans,
            terminal=view.status.terminal,
            jaeger=link,
            ran=view.started_at is not None or not view.status.terminal,
        )
