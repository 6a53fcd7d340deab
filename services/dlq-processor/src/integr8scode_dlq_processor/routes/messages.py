"""``/api/v1/dlq``: list, inspect, retry and discard dead letters; counts (admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from integr8scode_dlq_processor.domain.ports import ListFilter
from integr8scode_dlq_processor.domain.records import Status
from integr8scode_dlq_processor.routes.dependencies import Admin, Context, require_admin
from integr8scode_dlq_processor.routes.views import (
    DeadLetterDetail,
    DeadLetterPage,
    DeadLetterSummary,
    DiscardRequest,
    Stats,
)

PREFIX = "/api/v1/dlq"
TAG = "dead letters"

router = APIRouter(
    prefix=PREFIX,
    tags=[TAG],
    dependencies=[Depends(require_admin)],
    responses={
        401: {"description": "No valid bearer token"},
        403: {"description": "Not an admin"},
        503: {"description": "Mongo did not answer; retry shortly"},
    },
)

RecordId = Annotated[
    str, Path(min_length=1, max_length=128, description="Dead-letter id (from the list)")
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No dead letter with that id"}}


class MessageQuery(BaseModel):
    """Filters of ``GET /messages``; an unknown parameter is refused (a typo is not ignored)."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    topic: str | None = Field(default=None, min_length=1, max_length=256)
    event_type: str | None = Field(default=None, min_length=1, max_length=256)
    consumer_group: str | None = Field(default=None, min_length=1, max_length=256)
    execution_id: str | None = Field(default=None, min_length=1, max_length=256)
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=100_000)


@router.get("/messages")
async def list_messages(ctx: Context, query: Annotated[MessageQuery, Query()]) -> DeadLetterPage:
    """Dead letters, newest first, optionally filtered."""
    where = ListFilter(
        status=query.status,
        topic=query.topic,
        event_type=query.event_type,
        consumer_group=query.consumer_group,
        execution_id=query.execution_id,
    )
    page = await ctx.service.page(where, query.limit, query.offset)
    return DeadLetterPage(
        items=[DeadLetterSummary.of(r) for r in page.items],
        total=page.total,
        limit=query.limit,
        offset=query.offset,
    )


@router.get("/messages/{record_id}", responses=_NOT_FOUND)
async def get_message(record_id: RecordId, ctx: Context) -> DeadLetterDetail:
    """Everything about one dead letter: headers, payload, policy, attempt history."""
    return DeadLetterDetail.of(await ctx.service.get(record_id))


@router.post(
    "/messages/{record_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **_NOT_FOUND,
        409: {"description": "Being retried right now, or re-published and not failed again"},
    },
)
async def retry_message(record_id: RecordId, ctx: Context, admin: Admin) -> DeadLetterDetail:
    """Schedule the next attempt now, also for a discarded record (which gets one more
    attempt). The scheduler publishes it within its poll interval."""
    record = await ctx.service.retry_now(record_id, by=admin.user_id)
    ctx.wake_scheduler()
    return DeadLetterDetail.of(record)


@router.post(
    "/messages/{record_id}/discard",
    responses={**_NOT_FOUND, 409: {"description": "Already discarded, or being retried"}},
)
async def discard_message(
    record_id: RecordId, body: DiscardRequest, ctx: Context, admin: Admin
) -> DeadLetterDetail:
    """Park a dead letter: it is not retried again unless an admin asks."""
    return DeadLetterDetail.of(await ctx.service.discard(record_id, body.reason, admin.user_id))


@router.get("/stats")
async def stats(ctx: Context) -> Stats:
    """Counts by status, by topic and by consumer group."""
    return Stats.of(await ctx.service.counts())
