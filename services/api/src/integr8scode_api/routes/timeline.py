"""HTTP edge of the timeline: ``GET /api/v1/executions/{id}/timeline``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends

from integr8scode_api.dependencies import CurrentUser
from integr8scode_api.domain.timeline import Timeline
from integr8scode_api.timeline_service import TimelineService


def build_timeline_router(service: TimelineService, rate_limit: Callable[..., Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["executions"])

    @router.get(
        "/executions/{execution_id}/timeline",
        dependencies=[Depends(rate_limit)],
        responses={
            401: {"description": "Missing or invalid bearer token"},
            404: {"description": "No such execution, or not yours"},
            429: {"description": "Rate limited; see Retry-After"},
            503: {"description": "The trace backend (Jaeger query API) does not answer"},
        },
    )
    async def timeline(execution_id: str, user: CurrentUser) -> Timeline:
        """Where the execution's time went, from its trace: the phases in order (accepted,
        publish, queue wait, sandbox, result stored, status delivered), each notification
        with its attempts and dead-letter retries, the critical path, and the spans for a
        waterfall. ``complete`` is false, and ``missing`` says what, while the trace lacks a
        phase (not exported yet, sampled out, tracing off); nothing is estimated."""
        return await service.timeline(user, execution_id)

    return router
