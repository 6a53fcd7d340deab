"""HTTP edge of the execute use cases (DESIGN.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.responses import StreamingResponse

from integr8scode_api.dependencies import CurrentUser
from integr8scode_api.domain.execution_request import ExecuteRequest
from integr8scode_api.domain.executions import (
    CancelAccepted,
    ExecuteAccepted,
    ExecutionPage,
    ExecutionView,
    RuntimeInfo,
)
from integr8scode_api.execution_service import ExecutionService
from integr8scode_api.routes.pagination import Limit, Offset

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token"},
    404: {"description": "No such execution, or not yours"},
    429: {"description": "Rate limited; see Retry-After"},
    503: {"description": "A dependency (execution store, broker) is unavailable; try again"},
}
Base64Flag = Annotated[
    bool,
    Query(
        alias="base64",
        description="Binary-safe fields: on POST, `script`, `stdin`, each file's `content` and "
        "`expected_stdout` are base64 (422 when one isn't); on GET, `stdout` and `stderr` are "
        "base64 of the exact bytes the program wrote.",
    ),
]


def build_execution_router(
    service: ExecutionService,
    execute_rate_limit: Callable[..., Any],
    default_rate_limit: Callable[..., Any],
) -> APIRouter:
    """Routes for runtimes and executions; auth and rate limits are given as dependencies."""
    router = APIRouter(prefix="/api/v1", tags=["executions"], responses=_ERRORS)

    @router.get("/runtimes", dependencies=[Depends(default_rate_limit)])
    async def runtimes(user: CurrentUser) -> list[RuntimeInfo]:
        """Languages and versions the coordinators can run, each with its limits: the default
        a request that leaves a limit out gets, and the most it may ask."""
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
                "description": "Bad input, the field named in `detail`: unknown language or "
                "version; script, stdin, an argument or a file over its size; too many "
                "arguments or files; a file name with `..`, an absolute path, a NUL or the "
                "script's own name; a limit above its maximum; invalid base64 with "
                "`?base64=true`; or an Idempotency-Key already used for a different request",
                "content": {
                    "application/json": {
                        "example": {
                            "detail": "limits.timeout_s: 60 is above the maximum 30 for python"
                        }
                    }
                },
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
        use_base64: Base64Flag = False,
    ) -> ExecuteAccepted:
        """Queue a script for execution; the same ``Idempotency-Key`` gives the same execution."""
        client = request.client.host if request.client else None
        return await service.execute(
            user,
            body,
            idempotency_key=idempotency_key,
            client_address=client,
            base64=use_base64,
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
    async def get_execution(
        execution_id: str, user: CurrentUser, use_base64: Base64Flag = False
    ) -> ExecutionView:
        """Status, output, measurements, verdict and trace id of one execution."""
        return await service.get(user, execution_id, base64=use_base64)

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
