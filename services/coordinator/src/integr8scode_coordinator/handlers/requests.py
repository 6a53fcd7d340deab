"""Kafka edge of the coordinator: execution requests and cancel requests."""

from __future__ import annotations

import logging

from integr8scode_coordinator.domain.ports import SagaStore
from integr8scode_coordinator.domain.saga import ExecutionRequest, RequestFile, SagaStatus
from integr8scode_coordinator.orchestrator import ExecutionSaga
from integr8scode_coordinator.scheduler import Scheduler
from integr8scode_events import ExecutionCancelRequested, ExecutionRequested
from integr8scode_events.kafka import HandlerRegistry, MessageContext

log = logging.getLogger(__name__)


class RequestHandlers:
    def __init__(self, saga: ExecutionSaga, scheduler: Scheduler, store: SagaStore) -> None:
        self._saga = saga
        self._scheduler = scheduler
        self._store = store

    def registry(self) -> HandlerRegistry:
        return (
            HandlerRegistry()
            .on(ExecutionRequested, self.on_requested)
            .on(ExecutionCancelRequested, self.on_cancel_requested)
        )

    async def on_requested(self, event: ExecutionRequested, ctx: MessageContext) -> None:
        if event.execution_id is None or event.user_id is None:
            raise ValueError("execution.requested needs execution_id and user_id")
        payload = event.payload
        request = ExecutionRequest(
            execution_id=event.execution_id,
            user_id=event.user_id,
            correlation_id=event.correlation_id,
            script=payload.script,
            language=payload.language,
            language_version=payload.language_version,
            stdin=payload.stdin,
            timeout_s=payload.limits.timeout_s,
            memory_mb=payload.limits.memory_mb,
            cpu_time_s=payload.limits.cpu_time_s,
            max_processes=payload.limits.max_processes,
            max_output_kb=payload.limits.max_output_kb,
            stdin_encoding=payload.stdin_encoding,
            args=payload.args,
            files=tuple(RequestFile(f.name, f.content, f.encoding) for f in payload.files),
            expected_stdout=payload.expected_stdout,
            compile_limits=(
                payload.compile_limits.model_dump(exclude_none=True)
                if payload.compile_limits is not None
                else None
            ),
        )
        if await self._saga.accept(request):
            self._scheduler.wake()
        else:
            ctx.span.set_attribute("saga.accepted", False)

    async def on_cancel_requested(
        self, event: ExecutionCancelRequested, ctx: MessageContext
    ) -> None:
        if event.execution_id is None:
            raise ValueError("execution.cancel_requested needs execution_id")
        saga = await self._store.get(event.execution_id)
        if saga is None or saga.status.terminal:
            ctx.span.set_attribute("saga.cancel", "nothing to cancel")
            return
        by = event.payload.requested_by
        if saga.status is SagaStatus.QUEUED and await self._saga.cancel_queued(saga, by):
            ctx.span.set_attribute("saga.cancel", "cancelled while queued")
            return
        await self._store.request_cancel(event.execution_id)
        local = self._scheduler.cancel_local(event.execution_id)
        ctx.span.set_attribute("saga.cancel", "killed" if local else "flagged for its owner")
