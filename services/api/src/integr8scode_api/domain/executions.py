"""Executions as the public API sees them: request validation, statuses and the stored records.

No infrastructure here: rules take plain values and raise the project's errors.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

from integr8scode_events import StoredTraceContext


class ExecutionStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.CANCELLED,
    }
)


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(gt=0, description="Wall-clock limit in seconds.")
    memory_mb: int = Field(gt=0, description="Memory limit in MB.")


class ExecuteRequest(BaseModel):
    """Body of ``POST /api/v1/execute``."""

    model_config = ConfigDict(extra="forbid")

    script: str = Field(min_length=1, description="The program's source.")
    language: str = Field(min_length=1, max_length=32, examples=["python"])
    language_version: str | None = Field(default=None, max_length=32, examples=["3.11"])
    stdin: str = Field(default="", description="Fed to the program's standard input.")
    limits: Limits | None = None


class ExecuteAccepted(BaseModel):
    execution_id: str
    status: ExecutionStatus


class Runtime(BaseModel):
    language: str
    versions: list[str]
    default_version: str


@dataclass(frozen=True)
class ExecutionPolicy:
    """What the platform accepts."""

    max_script_bytes: int
    max_stdin_bytes: int
    max_timeout_s: float
    max_memory_mb: int
    default_timeout_s: float
    default_memory_mb: int


@dataclass(frozen=True)
class ValidatedRequest:
    script: str
    language: str
    language_version: str
    stdin: str
    limits: Limits


class RequestRejectedError(ValueError):
    """Why a request can't be accepted (answered 422)."""


def validate_request(
    request: ExecuteRequest, runtimes: list[Runtime], policy: ExecutionPolicy
) -> ValidatedRequest:
    """Resolve the version and limits, or raise ``RequestRejectedError`` saying what is wrong."""
    known = {r.language: r for r in runtimes}
    runtime = known.get(request.language)
    if runtime is None:
        offered = ", ".join(sorted(known)) or "none yet (no coordinator has registered)"
        raise RequestRejectedError(f"unknown language {request.language!r}; available: {offered}")
    version = request.language_version or runtime.default_version
    if version not in runtime.versions:
        raise RequestRejectedError(
            f"{request.language} {version!r} is not available; "
            f"available: {', '.join(runtime.versions)}"
        )
    size = len(request.script.encode())
    if size > policy.max_script_bytes:
        raise RequestRejectedError(
            f"script is {size} bytes; the maximum is {policy.max_script_bytes} bytes"
        )
    if len(request.stdin.encode()) > policy.max_stdin_bytes:
        raise RequestRejectedError(f"stdin is larger than {policy.max_stdin_bytes} bytes")
    limits = request.limits or Limits(
        timeout_s=policy.default_timeout_s, memory_mb=policy.default_memory_mb
    )
    if limits.timeout_s > policy.max_timeout_s:
        raise RequestRejectedError(
            f"limits.timeout_s {limits.timeout_s} is above the maximum {policy.max_timeout_s}"
        )
    if limits.memory_mb > policy.max_memory_mb:
        raise RequestRejectedError(
            f"limits.memory_mb {limits.memory_mb} is above the maximum {policy.max_memory_mb}"
        )
    return ValidatedRequest(request.script, request.language, version, request.stdin, limits)


class ResourceUsageView(BaseModel):
    cpu_time_ms: float
    wall_time_ms: float
    peak_memory_kb: int


class StatusChange(BaseModel):
    status: ExecutionStatus
    at: datetime


class ExecutionLinks(BaseModel):
    """Where to look next: the page a browser shows, and where the time went."""

    page: str = Field(description="The execution's page (HTML), relative to the API's origin.")
    timeline: str = Field(description="GET this for the timeline from the execution's trace.")


class ExecutionView(BaseModel):
    """``GET /api/v1/executions/{id}``."""

    execution_id: str
    status: ExecutionStatus
    language: str
    language_version: str
    stdout: str | None = None
    stderr: str | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    exit_code: int | None = None
    resource_usage: ResourceUsageView | None = None
    error: str | None = None
    queue_position: int | None = Field(
        default=None, description="Executions ahead of this one while it is queued."
    )
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    trace_id: str | None = None
    status_history: list[StatusChange] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def links(self) -> ExecutionLinks:
        return ExecutionLinks(
            page=f"/executions/{self.execution_id}",
            timeline=f"/api/v1/executions/{self.execution_id}/timeline",
        )


class ExecutionPage(BaseModel):
    items: list[ExecutionView]
    limit: int
    offset: int
    total: int


class CancelAccepted(BaseModel):
    execution_id: str
    status: str = "cancelling"


class Submission(enum.StrEnum):
    """Where the publish of a request with an ``Idempotency-Key`` stands: what a retry with
    the same key answers from (409 while ``pending``, 202 once ``acked`` or in the ``outbox``)."""

    PENDING = "pending"
    ACKED = "acked"
    OUTBOX = "outbox"


@dataclass(frozen=True)
class NewExecution:
    """An execution as ``POST /execute`` stores it: queued, its history that one status, its
    correlation id its own id. ``request_fingerprint`` and ``submission`` come with an
    ``Idempotency-Key`` only."""

    execution_id: str
    user_id: str
    language: str
    language_version: str
    script_length: int  # bytes (UTF-8)
    limits: Limits
    created_at: datetime
    trace_id: str | None
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    submission: Submission | None = None


@dataclass(frozen=True)
class StoredExecution:
    """An execution as the API reads it back, with whatever its lifecycle added."""

    execution_id: str
    user_id: str
    status: ExecutionStatus
    language: str
    language_version: str
    created_at: datetime
    correlation_id: str | None = None
    trace_id: str | None = None
    request_fingerprint: str | None = None
    submission: Submission | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    resource_usage: ResourceUsageView | None = None
    error: str | None = None
    status_history: tuple[StatusChange, ...] = ()


@dataclass(frozen=True)
class ExecutionResult:
    """The full (capped) output of an execution that ended, as the coordinator stored it."""

    stdout: str | None = None
    stderr: str | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    resource_usage: ResourceUsageView | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """An ``execution.requested`` event the broker has not confirmed yet, and the trace
    context (the request's) its re-publishing continues."""

    execution_id: str
    event: str
    trace: StoredTraceContext


def view_of(
    stored: StoredExecution, result: ExecutionResult | None, position: int | None
) -> ExecutionView:
    """The public view of a stored execution and, once it ended, its full output."""
    result = result or ExecutionResult()
    return ExecutionView(
        execution_id=stored.execution_id,
        status=stored.status,
        language=stored.language,
        language_version=stored.language_version,
        stdout=result.stdout,
        stderr=result.stderr,
        stdout_truncated=result.stdout_truncated,
        stderr_truncated=result.stderr_truncated,
        exit_code=stored.exit_code,
        resource_usage=stored.resource_usage or result.resource_usage,
        error=stored.error,
        queue_position=position,
        created_at=stored.created_at,
        started_at=stored.started_at,
        finished_at=stored.finished_at,
        trace_id=stored.trace_id,
        status_history=list(stored.status_history),
    )
