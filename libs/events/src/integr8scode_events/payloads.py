"""Typed payloads of the execution lifecycle, notifications and dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExecutionLimits(_Payload):
    """Limits of one run. The three added later are optional: an event without them runs
    under the coordinator's defaults (CPU time = ``timeout_s``, as before they existed)."""

    timeout_s: float = Field(gt=0, description="Wall-clock limit of the run.")
    memory_mb: int = Field(gt=0, description="Memory limit of the run.")
    cpu_time_s: float | None = Field(
        default=None, gt=0, description="CPU time of the whole run; None: ``timeout_s``."
    )
    max_processes: int | None = Field(
        default=None, gt=0, description="Processes and threads at once; None: the default."
    )
    max_output_kb: int | None = Field(
        default=None, gt=0, description="Kept per output stream, in KiB; None: the default."
    )


class CompileLimits(_Payload):
    """Lower limits for a compiled language's compile phase: each one given replaces the
    coordinator's own where it is lower; one left out (or higher) keeps the coordinator's."""

    timeout_s: float | None = Field(default=None, gt=0, description="Wall clock of the compile.")
    memory_mb: int | None = Field(default=None, gt=0, description="Memory of the compile.")
    cpu_time_s: float | None = Field(default=None, gt=0, description="CPU of the compile.")
    max_processes: int | None = Field(default=None, gt=0, description="Processes and threads.")
    max_output_kb: int | None = Field(
        default=None, gt=0, description="Compiler output kept per stream, in KiB."
    )


Encoding = Literal["utf-8", "base64"]


class ExecutionFile(_Payload):
    """An extra file written in the run's working directory before the program starts."""

    name: str = Field(description="Relative path under the working directory.")
    content: str = Field(description="The file's content, as ``encoding`` says.")
    encoding: Encoding = "utf-8"


class ResourceUsage(_Payload):
    cpu_time_ms: float = Field(ge=0)
    wall_time_ms: float = Field(ge=0)
    peak_memory_kb: int = Field(ge=0)


class CompileSummary(_Payload):
    """The compile phase of a compiled language: the compiler's exit code, wall time and the
    start of its output (all of it is in Mongo's ``execution_results``)."""

    exit_code: int | None = None
    wall_time_ms: float = Field(ge=0)
    stdout_preview: str = ""
    stderr_preview: str = ""


class OutputSummary(_Payload):
    """Sizes and a short preview; the full (capped) output lives in Mongo, not on Kafka."""

    stdout_bytes: int = Field(ge=0)
    stderr_bytes: int = Field(ge=0)
    stdout_preview: str = ""
    stderr_preview: str = ""
    truncated: bool = False


class ExecutionRequestedPayload(_Payload):
    """What to run. Fields after ``limits`` came later, each with a default, so an event
    without them still decodes and runs as before."""

    script: str
    language: str
    language_version: str
    stdin: str = ""
    limits: ExecutionLimits
    stdin_encoding: Encoding = Field(
        default="utf-8", description="``base64`` when ``stdin`` carries bytes in base64."
    )
    args: tuple[str, ...] = Field(default=(), description="Command-line arguments.")
    files: tuple[ExecutionFile, ...] = Field(default=(), description="Extra files.")
    expected_stdout: str | None = Field(
        default=None, description="When set, the result carries a verdict against it."
    )
    compile_limits: CompileLimits | None = Field(
        default=None, description="Lower compile-phase limits (compiled languages only)."
    )


class ExecutionCancelRequestedPayload(_Payload):
    requested_by: str
    reason: str = "cancelled by user"


class ExecutionStartedPayload(_Payload):
    runner: str
    started_at: datetime
    queue_wait_ms: float = Field(ge=0)


class ExecutionCompletedPayload(_Payload):
    exit_code: int
    resource_usage: ResourceUsage
    output: OutputSummary
    compile: CompileSummary | None = Field(default=None, description="Compiled languages only.")


class ExecutionFailedPayload(_Payload):
    error: str = Field(description="What went wrong, for the user: which limit, or platform error.")
    error_type: Literal["limit_exceeded", "platform_error", "invalid_request", "compilation_error"]
    exit_code: int | None = None
    resource_usage: ResourceUsage | None = None
    output: OutputSummary | None = None
    compile: CompileSummary | None = Field(default=None, description="Compiled languages only.")


class ExecutionTimedOutPayload(_Payload):
    timeout_s: float = Field(gt=0)
    resource_usage: ResourceUsage
    output: OutputSummary
    compile: CompileSummary | None = Field(default=None, description="Compiled languages only.")


class ExecutionCancelledPayload(_Payload):
    reason: str
    cancelled_by: str
    was_running: bool


class NotificationPayload(_Payload):
    notification_id: str
    channel: Literal["webhook", "slack"]
    execution_status: str
    attempts: int = Field(ge=1)
    status_code: int | None = None
    error: str | None = None
