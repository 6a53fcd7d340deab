"""HTTP edge of the execute use cases (DESIGN.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, status
from fastapi.responses import StreamingResponse

from integr8scode_api.dependencies import CurrentUser
from integr8scode_api.domain.executions import (
    CancelAccepted,
    ExecuteAccepted,
    ExecuteRequest,
    ExecutionPage,
    ExecutionView,
    Runtime,
)
from integr8scode_api.execution_service import ExecutionService
from integr8scode_api.routes.pagination import Limit, Offset

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token"},
    404: {"description": "No such execution, or not yours"},
    429: {"description": "Rate limited; see Retry-After"},
    503: {"description": "A dependency (execution store, broker) is unavailable; try again"},
}


def build_execution_router(
    service: ExecutionService,
    execute_rate_limit: Callable[..., Any],
    default_rate_limit: Callable[..., Any],
) -> APIRouter:
    """Routes for runtimes and executions; auth and rate limits are given as dependencies."""
    router = APIRouter(prefix="/api/v1", tags=["executions"], responses=_ERRORS)

    @router.get("/runtimes", dependencies=[Depends(default_rate_limit)])
    async def runtimes(user: CurrentUser) -> list[Runtime]:
        """Languages and versions the coordinators can run."""
        return await service.runtimes()

    @router.post(
        "/execute",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=[Depends(execute_rate_limit)],
        responses={
            409: {
                "description": "The first request with this Idempotency-Key still waits for "
                "the message broker; retry after Retry-After seconds for its outcome"
            },
            422: {
                "description": "Unknown language or version, oversized script, limits too "
                "high, or an Idempotency-Key already used for a different request"
            },
            503: {"description": "The message broker is unavailable; nothing was queued"},
        },
    )
    async def execute(
        body: ExecuteRequest,
        request: Request,
        user: CurrentUser,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", max_length=200)
        ] = None,
    ) -> ExecuteAccepted:
        """Queue a script for execution; the same ``Idempotency-Key`` gives the same execution."""
        client = request.client.host if request.client else None
        return await service.execute(
            user, body, idempotency_key=idempotency_key, client_address=client
        )

    @router.get("/executions", dependencies=[Depends(default_rate_limit)])
    async def list_executions(
        user: CurrentUser,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> ExecutionPage:
        """The caller's executions, newest first."""
        return await service.list(user, limit, offset)

    @router.get("/executions/{execution_id}", dependencies=[Depends(default_rate_limit)])
    async def get_execution(execution_id: str, user: CurrentUser) -> ExecutionView:
        """Status, output, measurements and trace id of one execution."""
        return await service.get(user, execution_id)

    @router.get(
        "/executions/{execution_id}/events",
        dependencies=[Depends(default_rate_limit)],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def execution_events(execution_id: str, user: CurrentUser) -> StreamingResponse:
        """Server-sent events of the execution's status changes; ends at a terminal status."""
        events = await service.stream(user, execution_id)
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.post(
        "/executions/{execution_id}/cancel",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=[Depends(default_rate_limit)],
        responses={409: {"description": "The execution already ended"}},
    )
    async def cancel(execution_id: str, user: CurrentUser) -> CancelAccepted:
        """Ask the coordinator to cancel the execution (queued or running)."""
        return await service.cancel(user, execution_id)

    return router
