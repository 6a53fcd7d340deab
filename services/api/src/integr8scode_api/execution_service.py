"""The execute use cases: accept, read, list, stream and cancel executions."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from integr8scode_api.adapters.coordinator_views import CoordinatorViews
from integr8scode_api.adapters.mongo_executions import MongoExecutions
from integr8scode_api.adapters.redis_status_feed import RedisStatusFeed
from integr8scode_api.domain.errors import (
    Conflict,
    DependencyUnavailable,
    NotFound,
    ValidationFailed,
)
from integr8scode_api.domain.executions import (
    CancelAccepted,
    ExecuteAccepted,
    ExecuteRequest,
    ExecutionPage,
    ExecutionPolicy,
    ExecutionStatus,
    ExecutionView,
    RequestRejectedError,
    Runtime,
    validate_request,
    view_of,
)
from integr8scode_api.domain.users import User
from integr8scode_events import (
    EventPublisher,
    ExecutionCancelRequested,
    ExecutionRequested,
    ProducerInfo,
    PublishError,
)
from integr8scode_events.payloads import (
    ExecutionCancelRequestedPayload,
    ExecutionLimits,
    ExecutionRequestedPayload,
)
from integr8scode_telemetry import attributes as a
from integr8scode_telemetry import set_span_attributes

NOT_QUEUED = "not queued: the message broker did not accept the request; retry later"


class ExecutionService:
    def __init__(
        self,
        *,
        executions: MongoExecutions,
        views: CoordinatorViews,
        publisher: EventPublisher,
        feed: RedisStatusFeed,
        policy: ExecutionPolicy,
        producer: ProducerInfo,
    ) -> None:
        self._executions = executions
        self._views = views
        self._publisher = publisher
        self._feed = feed
        self._policy = policy
        self._producer = producer

    async def runtimes(self) -> list[Runtime]:
        return await self._views.runtimes()

    async def execute(
        self,
        user: User,
        request: ExecuteRequest,
        *,
        idempotency_key: str | None,
        client_address: str | None,
    ) -> ExecuteAccepted:
        """Store the execution as queued and publish the request; answers only once the broker
        acknowledged. If it can't, the execution ends as failed and the caller gets 503."""
        set_span_attributes(
            {
                a.USER_ID: user.id,
                a.EXECUTION_LANGUAGE: request.language,
                a.EXECUTION_SCRIPT_LENGTH: len(request.script),
                a.CLIENT_ADDRESS: client_address,
            }
        )
        try:
            valid = validate_request(request, await self._views.runtimes(), self._policy)
        except RequestRejectedError as exc:
            raise ValidationFailed(str(exc)) from exc
        execution_id = str(uuid.uuid4())
        if idempotency_key:
            existing = await self._executions.claim_idempotency_key(
                user.id, idempotency_key, execution_id
            )
            if existing is not None:
                return await self._replay_idempotent(user, existing, idempotency_key)
        set_span_attributes(
            {a.EXECUTION_ID: execution_id, a.EXECUTION_LANGUAGE_VERSION: valid.language_version}
        )
        now = datetime.now(UTC)
        span_context = trace.get_current_span().get_span_context()
        trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else None
        await self._executions.create(
            {
                "_id": execution_id,
                "user_id": user.id,
                "status": ExecutionStatus.QUEUED.value,
                "language": valid.language,
                "language_version": valid.language_version,
                "script_length": len(valid.script),
                "limits": valid.limits.model_dump(),
                "idempotency_key": idempotency_key,
                "created_at": now,
                "trace_id": trace_id,
                "correlation_id": execution_id,
                "status_history": [{"status": ExecutionStatus.QUEUED.value, "at": now}],
            }
        )
        event = ExecutionRequested(
            producer=self._producer,
            correlation_id=execution_id,
            execution_id=execution_id,
            user_id=user.id,
            payload=ExecutionRequestedPayload(
                script=valid.script,
                language=valid.language,
                language_version=valid.language_version,
                stdin=valid.stdin,
                limits=ExecutionLimits(
                    timeout_s=valid.limits.timeout_s, memory_mb=valid.limits.memory_mb
                ),
            ),
        )
        try:
            await self._publisher.publish(event)
        except PublishError as exc:
            await self._executions.mark_not_queued(execution_id, NOT_QUEUED)
            if idempotency_key:
                await self._executions.release_idempotency_key(user.id, idempotency_key)
            raise DependencyUnavailable(NOT_QUEUED) from exc
        return ExecuteAccepted(execution_id=execution_id, status=ExecutionStatus.QUEUED)

    async def _replay_idempotent(self, user: User, execution_id: str, key: str) -> ExecuteAccepted:
        doc = await self._executions.get(execution_id)
        if doc is None:
            # The first request with this key is still being stored: same answer, no second run.
            return ExecuteAccepted(execution_id=execution_id, status=ExecutionStatus.QUEUED)
        set_span_attributes({a.EXECUTION_ID: execution_id, "idempotency.replayed": True})
        return ExecuteAccepted(execution_id=execution_id, status=ExecutionStatus(doc["status"]))

    async def get(self, user: User, execution_id: str) -> ExecutionView:
        doc = await self._owned(user, execution_id)
        status = ExecutionStatus(doc["status"])
        result = await self._views.result(execution_id) if status.terminal else None
        position = (
            await self._views.queue_position(execution_id)
            if status is ExecutionStatus.QUEUED
            else None
        )
        return view_of(doc, result, position)

    async def list(self, user: User, limit: int, offset: int) -> ExecutionPage:
        docs, total = await self._executions.list_for_user(user.id, limit, offset)
        return ExecutionPage(
            items=[view_of(d, None, None) for d in docs], limit=limit, offset=offset, total=total
        )

    async def cancel(self, user: User, execution_id: str) -> CancelAccepted:
        doc = await self._owned(user, execution_id)
        if ExecutionStatus(doc["status"]).terminal:
            raise Conflict(f"execution {execution_id} already ended as {doc['status']}")
        event = ExecutionCancelRequested(
            producer=self._producer,
            correlation_id=doc.get("correlation_id") or execution_id,
            execution_id=execution_id,
            user_id=doc["user_id"],
            payload=ExecutionCancelRequestedPayload(requested_by=user.id),
        )
        try:
            await self._publisher.publish(event)
        except PublishError as exc:
            raise DependencyUnavailable("the cancel request could not be queued; retry") from exc
        return CancelAccepted(execution_id=execution_id)

    async def stream(self, user: User, execution_id: str) -> AsyncIterator[str]:
        """Server-sent events: every status so far, then each change, ending at a terminal one."""
        await self._owned(user, execution_id)  # 404 before the stream starts
        return self._stream(execution_id)

    async def _stream(self, execution_id: str) -> AsyncIterator[str]:
        async with self._feed.subscribe(execution_id) as changes:
            sent: set[str] = set()

            def unsent(history: list[dict[str, Any]]) -> list[str]:
                fresh = [c for c in history if c["status"] not in sent]
                sent.update(c["status"] for c in fresh)
                return [_sse(c["status"], c["at"], execution_id) for c in fresh]

            async def replay_stored() -> tuple[list[str], bool]:
                doc = await self._executions.get(execution_id) or {}
                terminal = ExecutionStatus(doc.get("status", "queued")).terminal
                return unsent(doc.get("status_history", [])), terminal

            events, terminal = await replay_stored()
            for event in events:
                yield event
            if terminal:
                return
            async for change in changes:
                if change:
                    for event in unsent([change]):
                        yield event
                    if ExecutionStatus(change["status"]).terminal:
                        return
                    continue
                yield ": keep-alive\n\n"
                # Idle: a missed message must not leave the stream open forever, so re-read.
                events, terminal = await replay_stored()
                for event in events:
                    yield event
                if terminal:
                    return

    async def _owned(self, user: User, execution_id: str) -> dict[str, Any]:
        doc = await self._executions.get(execution_id)
        if doc is None or (doc["user_id"] != user.id and user.role != "admin"):
            raise NotFound(f"execution {execution_id} not found")
        return doc


def _sse(status: str, at: Any, execution_id: str) -> str:
    stamp = at.isoformat() if isinstance(at, datetime) else str(at)
    payload = json.dumps({"execution_id": execution_id, "status": status, "at": stamp})
    return f"event: status\ndata: {payload}\n\n"


__all__ = ["ExecutionService"]
