"""Executions as the public API sees them: request validation, statuses and the stored records.

No infrastructure here: rules take plain values and raise the project's errors.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    computed_field,
    model_serializer,
)

from integr8scode_api.domain.execution_limits import LimitTable, ResolvedLimits
from integr8scode_events import StoredTraceContext

Verdict = Literal["accepted", "wrong_answer"]


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


class ExecuteAccepted(BaseModel):
    execution_id: str
    status: ExecutionStatus


class Runtime(BaseModel):
    """A language as the coordinators registered it."""

    language: str
    versions: list[str]
    default_version: str
    script_file: str | None = Field(
        default=None,
        description="The script's own file in the working directory: no extra file may be "
        "named so.",
        examples=["main.py"],
    )
    compiled: bool = Field(
        default=False,
        description="A compile phase runs before the program; the result then carries `compile`.",
    )
    compile_limits: dict[str, float] | None = Field(
        default=None,
        description="Compiled languages: the limits of the compile phase (`timeout_s`, "
        "`memory_mb`, `cpu_time_s`, `max_processes`, `max_output_kb`), each the default and "
        "the most; a request's `compile_limits` may lower each.",
        examples=[{"timeout_s": 20, "memory_mb": 768, "cpu_time_s": 30, "max_processes": 256}],
    )
    full_versions: list[str] = Field(
        default=[],
        description="The exact versions the coordinators detected (e.g. `3.11.2` for `3.11`).",
    )


class RuntimeInfo(Runtime):
    """``GET /api/v1/runtimes``: a language, its versions and its limits."""

    limits: LimitTable = Field(
        description="The default each limit gets when a request leaves it out, and the most a "
        "request may ask (422 above it)."
    )


class ResourceUsageView(BaseModel):
    cpu_time_ms: float
    wall_time_ms: float
    peak_memory_kb: int


class CompileView(BaseModel):
    """The compile phase of a compiled language: the compiler's exit code and output."""

    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    wall_time_ms: float = 0.0


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
    verdict: Verdict | None = Field(
        default=None,
        description="Only when the request gave `expected_stdout` (absent otherwise): "
        "`accepted` if the program ran to its end, exited 0 and its whole stdout matched once "
        "trailing whitespace was trimmed from each line and the end; else `wrong_answer`.",
    )
    encoding: Literal["utf-8", "base64"] = Field(
        default="utf-8",
        description="`base64` when `?base64=true` was asked: `stdout` and `stderr` are then the "
        "exact bytes the program wrote (up to the cap), in base64.",
    )
    compile: CompileView | None = Field(
        default=None,
        description="Only for a compiled language that reached its compile phase (absent "
        "otherwise): the compiler's exit code, output (as text) and wall time. A failed "
        'compile ends `failed` with `error: "compilation failed"`.',
    )

    # No return annotation on purpose: pydantic would take it as the serialized schema, and
    # the OpenAPI document would lose every property of the view.
    @model_serializer(mode="wrap")
    def _without_absent_verdict(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data: dict[str, Any] = handler(self)
        for absent_unless_set in ("verdict", "compile"):
            if data.get(absent_unless_set) is None:
                data.pop(absent_unless_set, None)
        return data

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


class BatchItemError(BaseModel):
    """Why one submission of a batch was not accepted: the status and detail a single
    ``POST /execute`` would have answered."""

    status: int = Field(description="422 bad input, 429 rate limited, 503 dependency down.")
    detail: str
    retry_after_s: float | None = Field(default=None, description="With 429: when to retry.")


class BatchItem(BaseModel):
    """One submission's outcome, at its index in the request: an execution or an error."""

    index: int
    execution_id: str | None = None
    status: ExecutionStatus | None = None
    error: BatchItemError | None = None


class BatchAccepted(BaseModel):
    """``POST /api/v1/executions/batch``: one entry per submission, in order."""

    items: list[BatchItem]
    accepted: int = Field(description="How many submissions became executions.")


class ExecutionBatch(BaseModel):
    """``GET /api/v1/executions?ids=``: the ones found, in the order asked, and the rest."""

    items: list[ExecutionView]
    missing: list[str] = Field(description="Ids that are not executions of the caller's.")


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
    limits: ResolvedLimits
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
    # The exact bytes, stored only where the text above is not (not UTF-8, or cut mid-character).
    stdout_raw: bytes | None = None
    stderr_raw: bytes | None = None
    verdict: Verdict | None = None
    # The run's own note, e.g. "output truncated at 2 KiB" on a run that completed anyway.
    error: str | None = None
    compile: CompileView | None = None

    def output_base64(self) -> tuple[str | None, str | None]:
        """stdout and stderr as base64 of the bytes the program wrote (as far as kept)."""

        def encode(text: str | None, raw: bytes | None) -> str | None:
            data = raw if raw is not None else None if text is None else text.encode()
            return None if data is None else base64.b64encode(data).decode()

        return encode(self.stdout, self.stdout_raw), encode(self.stderr, self.stderr_raw)


@dataclass(frozen=True)
class OutboxEntry:
    """An ``execution.requested`` event the broker has not confirmed yet, and the trace
    context (the request's) its re-publishing continues."""

    execution_id: str
    event: str
    trace: StoredTraceContext


def view_of(
    stored: StoredExecution,
    result: ExecutionResult | None,
    position: int | None,
    *,
    as_base64: bool = False,
) -> ExecutionView:
    """The public view of a stored execution and, once it ended, its full output (as base64
    of its bytes with ``as_base64``)."""
    result = result or ExecutionResult()
    stdout, stderr = result.output_base64() if as_base64 else (result.stdout, result.stderr)
    return ExecutionView(
        execution_id=stored.execution_id,
        status=stored.status,
        language=stored.language,
        language_version=stored.language_version,
        stdout=stdout,
        stderr=stderr,
        stdout_truncated=result.stdout_truncated,
        stderr_truncated=result.stderr_truncated,
        exit_code=stored.exit_code,
        resource_usage=stored.resource_usage or result.resource_usage,
        # A failure's reason, else what the run noted (a completed run's truncated output).
        error=stored.error or result.error,
        queue_position=position,
        created_at=stored.created_at,
        started_at=stored.started_at,
        finished_at=stored.finished_at,
        trace_id=stored.trace_id,
        status_history=list(stored.status_history),
        verdict=result.verdict,
        encoding="base64" if as_base64 else "utf-8",
        compile=result.compile,
    )
