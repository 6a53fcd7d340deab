"""HTTP edge of the execute use cases (DESIGN.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from integr8scode_api.dependencies import Context, CurrentUser, client_address
from integr8scode_api.domain.execution_request import BatchRequest, ExecuteRequest
from integr8scode_api.domain.executions import (
    BatchAccepted,
    CancelAccepted,
    ExecuteAccepted,
    ExecutionBatch,
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


WaitFlag = Annotated[
    bool,
    Query(
        description="Hold the request until the execution ends, at most "
        "`API_EXECUTION_WAIT_MAX_S` (10 s by default): 200 with the whole result (as "
        "`GET /executions/{id}`) if it ended by then, else 202 as without it.",
    ),
]
EXECUTE_PATH = "/api/v1/execute"  # the rule each submission of a batch is counted against


@dataclass(frozen=True)
class ExecutionRouteBounds:
    """How long ``?wait=true`` holds a request, and how many a batch or ``?ids=`` takes
    (``API_EXECUTION_WAIT_MAX_S``, ``…_MAX_BATCH``, ``…_MAX_IDS``)."""

    wait_max_s: float = 10.0
    max_batch: int = 20
    max_ids: int = 50


def build_execution_router(
    service: ExecutionService,
    execute_rate_limit: Callable[..., Any],
    default_rate_limit: Callable[..., Any],
    bounds: ExecutionRouteBounds | None = None,
) -> APIRouter:
    """Routes for runtimes and executions; auth and rate limits are given as dependencies."""
    router = APIRouter(prefix="/api/v1", tags=["executions"], responses=_ERRORS)
    bounds = bounds or ExecutionRouteBounds()
    wait_max_s, max_batch, max_ids = bounds.wait_max_s, bounds.max_batch, bounds.max_ids

    @router.get("/runtimes", dependencies=[Depends(default_rate_limit)])
    async def runtimes(user: CurrentUser) -> list[RuntimeInfo]:
        """Languages and versions the coordinators can run, each with its limits: the default
        a request that leaves a limit out gets, and the most it may ask."""
        return await service.runtimes()

    @router.post(
        "/execute",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=ExecuteAccepted,
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
            200: {
                "model": ExecutionView,
                "description": "With `?wait=true`: the execution ended within the wait; its "
                "whole result",
            },
        },
    )
    async def execute(
        body: ExecuteRequest,
        request: Request,
        user: CurrentUser,
        *,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", max_length=200)
        ] = None,
        use_base64: Base64Flag = False,
        wait: WaitFlag = False,
    ) -> ExecuteAccepted | JSONResponse:
        """Queue a script for execution; the same ``Idempotency-Key`` gives the same execution.
        With ``?wait=true``, answer with the result when it ends within the wait."""
        client = request.client.host if request.client else None
        if not wait or wait_max_s <= 0:
            return await service.execute(
                user,
                body,
                idempotency_key=idempotency_key,
                client_address=client,
                base64=use_base64,
            )
        answer = await service.execute_and_wait(
            user,
            body,
            wait_max_s,
            idempotency_key=idempotency_key,
            client_address=client,
            base64=use_base64,
        )
        if isinstance(answer, ExecuteAccepted):
            return answer
        return JSONResponse(answer.model_dump(mode="json"), status_code=status.HTTP_200_OK)

    @router.post(
        "/executions/batch",
        status_code=status.HTTP_202_ACCEPTED,
        dependencies=[Depends(default_rate_limit)],
        responses={
            422: {
                "description": "More submissions than `API_EXECUTION_MAX_BATCH`, none, or a "
                "body that is not a list of execute requests (a submission's own bad input is "
                "its item's error, not the batch's)"
            },
        },
    )
    async def execute_batch(
        body: BatchRequest,
        request: Request,
        user: CurrentUser,
        ctx: Context,
        use_base64: Base64Flag = False,
    ) -> BatchAccepted:
        """Several submissions at once: each becomes its own execution (its own trace, linked
        to this request's span) or gets its own error (422, 429 with `retry_after_s` once the
        caller's execute rate limit is used up, 503), in the order given."""
        client = client_address(request)

        async def admit() -> float | None:
            check = await ctx.rate_limits.check(
                method="POST", path=EXECUTE_PATH, user_id=user.id, client=client
            )
            decision = check.decision
            return None if decision is None or decision.allowed else decision.retry_after_s

        return await service.submit_batch(
            user,
            body.submissions,
            max_batch=max_batch,
            admit=admit,
            client_address=client,
            base64=use_base64,
        )

    @router.get("/executions", dependencies=[Depends(default_rate_limit)])
    async def list_executions(
        user: CurrentUser,
        limit: Limit = 20,
        offset: Offset = 0,
        ids: Annotated[
            str | None,
            Query(
                description="Comma-separated execution ids: answer those (whole, as "
                "`GET /executions/{id}`, in this order) instead of a page; at most "
                "`API_EXECUTION_MAX_IDS`. Ids that aren't the caller's are listed as missing.",
                max_length=10_000,
            ),
        ] = None,
        use_base64: Base64Flag = False,
    ) -> ExecutionPage | ExecutionBatch:
        """The caller's executions, newest first; or, with ``ids``, those executions."""
        if ids is not None:
            return await service.get_many(user, ids.split(","), max_ids=max_ids, base64=use_base64)
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
        stream = await service.stream(user, execution_id)
        return StreamingResponse(
            stream.events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            # Runs after the response, also when the client left before its first byte.
            background=BackgroundTask(stream.close),
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
