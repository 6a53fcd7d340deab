"""``/api/v1/replay/sessions``: create (or dry-run), list, inspect, pause, resume, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from opentelemetry import trace
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from integr8scode_event_replay.domain.sessions import (
    Action,
    Cursor,
    PreviewItem,
    ReplaySession,
    SessionStatus,
)
from integr8scode_event_replay.domain.spec import ReplayFilters
from integr8scode_event_replay.routes.dependencies import Admin, Context, require_admin
from integr8scode_event_replay.service import NewSession

router = APIRouter(
    prefix="/api/v1/replay",
    tags=["replay"],
    dependencies=[Depends(require_admin)],
    responses={
        401: {"description": "No valid token"},
        403: {"description": "Not an admin"},
        503: {"description": "The session or event store is unavailable; see Retry-After"},
    },
)

SessionId = Annotated[str, Path(min_length=1, max_length=64, description="Session id")]
_SPEED_HELP = "'max' (as fast as possible) or a factor of the original spacing (1.0 real time)"


class FiltersIn(BaseModel):
    """Which stored events to replay; at least one criterion."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    event_types: list[str] | None = Field(
        default=None, min_length=1, max_length=50, examples=[["execution.completed"]]
    )
    execution_id: str | None = Field(default=None, min_length=1, max_length=200)
    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    occurred_from: AwareDatetime | None = Field(
        default=None, alias="from", description="occurred_at ≥ from"
    )
    occurred_to: AwareDatetime | None = Field(
        default=None, alias="to", description="occurred_at < to (default: creation time)"
    )

    def domain(self) -> ReplayFilters:
        return ReplayFilters(
            event_types=tuple(self.event_types or ()),
            execution_id=self.execution_id,
            user_id=self.user_id,
            occurred_from=self.occurred_from,
            occurred_to=self.occurred_to,
        )


class TargetIn(BaseModel):
    """``original``: each event's own topic; ``topic``: one named topic."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["original", "topic"] = "original"
    topic: str | None = Field(default=None, min_length=1, max_length=249)

    @model_validator(mode="after")
    def _topic_with_its_kind(self) -> TargetIn:
        if self.kind == "topic" and self.topic is None:
            raise ValueError("a 'topic' target needs the topic name")
        if self.kind == "original" and self.topic is not None:
            raise ValueError("an 'original' target takes no topic (use kind 'topic')")
        return self


class CreateSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filters: FiltersIn
    target: TargetIn = Field(default_factory=TargetIn)
    speed: Literal["max"] | float = Field(default="max", description=_SPEED_HELP)
    max_events: int | None = Field(
        default=None, description="Safety cap (default and maximum: settings)"
    )
    dry_run: bool = Field(default=False, description="Only count and preview; publish nothing")
    reprocess: bool = Field(
        default=False, description="Consumers handle the events again (x-replay-reprocess)"
    )

    @field_validator("speed", mode="before")
    @classmethod
    def _speed(cls, value: Any) -> Any:
        if value == "max":
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"speed must be {_SPEED_HELP}")  # noqa: TRY004 - pydantic wants it
        return float(value)

    def domain(self) -> NewSession:
        return NewSession(
            filters=self.filters.domain(),
            target_topic=self.target.topic,
            speed_factor=None if self.speed == "max" else float(self.speed),
            max_events=self.max_events,
            dry_run=self.dry_run,
            reprocess=self.reprocess,
        )


class FiltersOut(BaseModel):
    event_types: list[str]
    execution_id: str | None
    user_id: str | None
    occurred_from: datetime | None = Field(serialization_alias="from")
    occurred_to: datetime | None = Field(serialization_alias="to")


class TargetOut(BaseModel):
    kind: Literal["original", "topic"]
    topic: str | None


class PositionOut(BaseModel):
    """The last event handled (the session continues after it)."""

    occurred_at: datetime
    event_id: str

    @classmethod
    def of(cls, cursor: Cursor | None) -> PositionOut | None:
        return None if cursor is None else cls(**cursor.__dict__)


class PreviewOut(BaseModel):
    event_id: str
    event_type: str
    execution_id: str | None
    occurred_at: datetime
    target_topic: str | None

    @classmethod
    def of(cls, item: PreviewItem) -> PreviewOut:
        return cls(**item.__dict__)


class SessionOut(BaseModel):
    id: str
    status: SessionStatus
    dry_run: bool
    reprocess: bool
    filters: FiltersOut
    target: TargetOut
    speed: Literal["max"] | float
    max_events: int
    matched: int | None = Field(
        description="Events that match the filters; null until the session's background count "
        "has finished (a dry run answers with it)"
    )
    matched_is_lower_bound: bool = Field(
        description="matched (and so planned and capped) is 'at least': a dry run's count "
        "stopped at its time budget or one past max_events"
    )
    capped: bool | None = Field(
        description="More matched than max_events: the first ones are replayed (null: not known "
        "yet)"
    )
    planned: int | None = Field(
        description="Events the session replays: min(matched, max_events); null until counted"
    )
    published: int
    skipped: int = Field(description="Stored events that are not valid events any more")
    failed: int = Field(description="Events the broker did not acknowledge")
    position: PositionOut | None
    created_at: datetime
    created_by: str
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    last_error: str | None
    trace_id: str | None = Field(description="Trace of the latest run (span event_replay.session)")
    owner: str | None = Field(description="Instance running it (none when idle or ended)")
    preview: list[PreviewOut] = Field(description="Dry run: the first events it would replay")
    preview_complete: bool = Field(
        description="False when a dry run's time budget ran out before its preview was read"
    )

    @classmethod
    def of(cls, session: ReplaySession) -> SessionOut:
        spec, filters = session.spec, session.spec.filters
        return cls(
            id=session.id,
            status=session.status,
            dry_run=spec.dry_run,
            reprocess=spec.reprocess,
            filters=FiltersOut(
                event_types=list(filters.event_types),
                execution_id=filters.execution_id,
                user_id=filters.user_id,
                occurred_from=filters.occurred_from,
                occurred_to=filters.occurred_to,
            ),
            target=TargetOut(
                kind="original" if spec.target.original else "topic", topic=spec.target.topic
            ),
            speed="max" if spec.speed.factor is None else spec.speed.factor,
            max_events=spec.max_events,
            matched=session.matched,
            matched_is_lower_bound=session.matched_is_lower_bound,
            capped=session.capped,
            planned=session.planned,
            published=session.published,
            skipped=session.skipped,
            failed=session.failed,
            position=PositionOut.of(session.cursor),
            created_at=session.created_at,
            created_by=session.created_by,
            started_at=session.started_at,
            finished_at=session.finished_at,
            updated_at=session.updated_at,
            last_error=session.last_error,
            trace_id=session.trace_id,
            owner=session.owner,
            preview=[PreviewOut.of(item) for item in session.preview],
            preview_complete=session.preview_complete,
        )


class SessionPage(BaseModel):
    items: list[SessionOut]
    total: int
    limit: int
    offset: int


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    responses={422: {"description": "Invalid filters, target, speed or cap"}},
    response_model_by_alias=True,
)
async def create_session(body: CreateSessionIn, ctx: Context, admin: Admin) -> SessionOut:
    """Create a session and answer at once: it starts in the background, and ``matched``
    (with ``planned`` and ``capped``) is null until its count, made beside the replay, has
    finished. A dry run completes within ``REPLAY_DRY_RUN_BUDGET_S`` with the count and a
    preview of the first events, and publishes nothing; a count the budget cut short says
    ``matched_is_lower_bound``."""
    creator = trace.get_current_span().get_span_context()
    session = await ctx.service.create(
        body.domain(), admin.user_id, creator if creator.is_valid else None
    )
    # From the admin's request to the session's own trace (and back, by the session's link).
    trace.get_current_span().set_attribute("replay.session.id", session.id)
    return SessionOut.of(session)


@router.get("/sessions", response_model_by_alias=True)
async def list_sessions(
    ctx: Context,
    status_filter: Annotated[SessionStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> SessionPage:
    """Sessions, newest first."""
    sessions, total = await ctx.service.list_page(status_filter, limit, offset)
    return SessionPage(
        items=[SessionOut.of(s) for s in sessions], total=total, limit=limit, offset=offset
    )


@router.get(
    "/sessions/{session_id}",
    responses={404: {"description": "No such session"}},
    response_model_by_alias=True,
)
async def get_session(session_id: SessionId, ctx: Context) -> SessionOut:
    """A session and its progress."""
    return SessionOut.of(await ctx.service.get(session_id))


async def _act(session_id: str, ctx: Context, action: Action) -> SessionOut:
    trace.get_current_span().set_attribute("replay.session.id", session_id)
    return SessionOut.of(await ctx.service.act(session_id, action))


_CONTROL_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such session"},
    409: {"description": "Not allowed in the session's status"},
}


@router.post(
    "/sessions/{session_id}/pause", responses=_CONTROL_RESPONSES, response_model_by_alias=True
)
async def pause_session(session_id: SessionId, ctx: Context) -> SessionOut:
    """running → paused, between two messages."""
    return await _act(session_id, ctx, Action.PAUSE)


@router.post(
    "/sessions/{session_id}/resume", responses=_CONTROL_RESPONSES, response_model_by_alias=True
)
async def resume_session(session_id: SessionId, ctx: Context) -> SessionOut:
    """paused → running."""
    return await _act(session_id, ctx, Action.RESUME)


@router.post(
    "/sessions/{session_id}/cancel", responses=_CONTROL_RESPONSES, response_model_by_alias=True
)
async def cancel_session(session_id: SessionId, ctx: Context) -> SessionOut:
    """created, running or paused → cancelled, between two messages."""
    return await _act(session_id, ctx, Action.CANCEL)
