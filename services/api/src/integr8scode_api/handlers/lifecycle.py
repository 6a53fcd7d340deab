"""Applies the coordinator's lifecycle events to ``executions`` and fans them out for SSE."""

from __future__ import annotations

import logging
from typing import Any

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.execution_ports import ExecutionStore, StatusFeed
from integr8scode_api.domain.executions import ExecutionStatus, StatusChange
from integr8scode_events import (
    EventEnvelope,
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    ExecutionTimedOut,
)
from integr8scode_events.kafka import HandlerRegistry, MessageContext

log = logging.getLogger(__name__)


class LifecycleHandlers:
    def __init__(self, executions: ExecutionStore, feed: StatusFeed) -> None:
        self._executions = executions
        self._feed = feed

    def registry(self) -> HandlerRegistry:
        return (
            HandlerRegistry()
            .on(ExecutionStarted, self.on_started)
            .on(ExecutionCompleted, self.on_completed)
            .on(ExecutionFailed, self.on_failed)
            .on(ExecutionTimedOut, self.on_timed_out)
            .on(ExecutionCancelled, self.on_cancelled)
        )

    async def on_started(self, event: ExecutionStarted, ctx: MessageContext) -> None:
        await self._apply(event, ExecutionStatus.RUNNING, {"started_at": event.payload.started_at})

    async def on_completed(self, event: ExecutionCompleted, ctx: MessageContext) -> None:
        p = event.payload
        await self._apply(
            event,
            ExecutionStatus.COMPLETED,
            {"exit_code": p.exit_code, "resource_usage": p.resource_usage.model_dump()},
        )

    async def on_failed(self, event: ExecutionFailed, ctx: MessageContext) -> None:
        p = event.payload
        fields: dict[str, Any] = {"error": p.error, "exit_code": p.exit_code}
        if p.resource_usage is not None:
            fields["resource_usage"] = p.resource_usage.model_dump()
        await self._apply(event, ExecutionStatus.FAILED, fields)

    async def on_timed_out(self, event: ExecutionTimedOut, ctx: MessageContext) -> None:
        p = event.payload
        await self._apply(
            event,
            ExecutionStatus.TIMED_OUT,
            {
                "error": f"wall-clock timeout of {p.timeout_s:g}s exceeded",
                "resource_usage": p.resource_usage.model_dump(),
            },
        )

    async def on_cancelled(self, event: ExecutionCancelled, ctx: MessageContext) -> None:
        await self._apply(event, ExecutionStatus.CANCELLED, {"error": event.payload.reason})

    async def _apply(
        self, event: EventEnvelope, status: ExecutionStatus, fields: dict[str, Any]
    ) -> None:
        if event.execution_id is None:
            raise ValueError(f"{event.event_type} without execution_id")
        at = event.occurred_at
        if status.terminal:
            fields["finished_at"] = at
        if not await self._executions.transition(event.execution_id, status, at, **fields):
            return  # already past this status: a redelivery or a late event
        try:
            await self._feed.publish(event.execution_id, StatusChange(status=status, at=at))
        except DependencyUnavailableError as exc:
            # SSE clients fall back to the stored state on their next read; not worth a retry.
            log.warning("status of %s not fanned out: %s", event.execution_id, exc)
