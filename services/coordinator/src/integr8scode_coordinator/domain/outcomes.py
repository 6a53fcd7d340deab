"""From a sandbox result (or a reason the run never happened) to the terminal event."""

from __future__ import annotations

from typing import Literal

from integr8scode_coordinator.domain.inputs import storable_text
from integr8scode_coordinator.domain.saga import ExecutionRequest, SagaStatus, TerminalReason
from integr8scode_coordinator.sandbox import COMPILATION_FAILED, SandboxResult
from integr8scode_events import (
    EventEnvelope,
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionTimedOut,
    ProducerInfo,
)
from integr8scode_events.payloads import (
    CompileSummary,
    ExecutionCancelledPayload,
    ExecutionCompletedPayload,
    ExecutionFailedPayload,
    ExecutionTimedOutPayload,
    OutputSummary,
    ResourceUsage,
)

PREVIEW_CHARS = 512


def output_summary(result: SandboxResult) -> OutputSummary:
    return OutputSummary(
        stdout_bytes=len(result.stdout.encode()),
        stderr_bytes=len(result.stderr.encode()),
        # Stored with the saga and by the event store: no NUL (``inputs.storable_text``).
        stdout_preview=storable_text(result.stdout[:PREVIEW_CHARS]),
        stderr_preview=storable_text(result.stderr[:PREVIEW_CHARS]),
        truncated=result.stdout_truncated or result.stderr_truncated,
    )


def compile_summary(result: SandboxResult) -> CompileSummary | None:
    if result.compile is None:
        return None
    return CompileSummary(
        exit_code=result.compile.exit_code,
        wall_time_ms=result.compile.wall_time_ms,
        stdout_preview=storable_text(result.compile.stdout[:PREVIEW_CHARS]),
        stderr_preview=storable_text(result.compile.stderr[:PREVIEW_CHARS]),
    )


def resource_usage(result: SandboxResult) -> ResourceUsage:
    return ResourceUsage(
        cpu_time_ms=result.cpu_time_ms,
        wall_time_ms=result.wall_time_ms,
        peak_memory_kb=result.peak_memory_kb,
    )


def status_of(result: SandboxResult) -> SagaStatus:
    return {
        "completed": SagaStatus.COMPLETED,
        "timed_out": SagaStatus.TIMED_OUT,
        "cancelled": SagaStatus.CANCELLED,
        "failed": SagaStatus.FAILED,
    }[result.outcome]


def terminal_event(
    request: ExecutionRequest, result: SandboxResult, producer: ProducerInfo, cancelled_by: str
) -> EventEnvelope:
    """The one terminal event of an execution that ran."""
    common = _common(request, producer)
    status = status_of(result)
    if status is SagaStatus.COMPLETED:
        return ExecutionCompleted(
            **common,
            payload=ExecutionCompletedPayload(
                exit_code=result.exit_code if result.exit_code is not None else -1,
                resource_usage=resource_usage(result),
                output=output_summary(result),
                compile=compile_summary(result),
            ),
        )
    if status is SagaStatus.TIMED_OUT:
        return ExecutionTimedOut(
            **common,
            payload=ExecutionTimedOutPayload(
                timeout_s=request.timeout_s,
                resource_usage=resource_usage(result),
                output=output_summary(result),
                compile=compile_summary(result),
            ),
        )
    if status is SagaStatus.CANCELLED:
        return ExecutionCancelled(
            **common,
            payload=ExecutionCancelledPayload(
                reason="cancelled while running", cancelled_by=cancelled_by, was_running=True
            ),
        )
    return ExecutionFailed(
        **common,
        payload=ExecutionFailedPayload(
            error=result.error or "the run failed",
            error_type=_failure_type(result),
            exit_code=result.exit_code,
            resource_usage=resource_usage(result),
            output=output_summary(result),
            compile=compile_summary(result),
        ),
    )


def _failure_type(result: SandboxResult) -> Literal["limit_exceeded", "compilation_error"]:
    """A run its compile phase ended (the compiler refused the program, or a compile limit
    stopped it) is a compilation error; any other failure of a run is a limit's."""
    if result.compile is not None and (result.error or "").startswith(COMPILATION_FAILED):
        return "compilation_error"
    return "limit_exceeded"


def failed_event(
    request: ExecutionRequest, producer: ProducerInfo, error: str, reason: TerminalReason
) -> ExecutionFailed:
    """The terminal event of an execution that could not run."""
    return ExecutionFailed(
        **_common(request, producer),
        payload=ExecutionFailedPayload(error=error, error_type=reason.value),
    )


def cancelled_event(
    request: ExecutionRequest, producer: ProducerInfo, cancelled_by: str
) -> ExecutionCancelled:
    """The terminal event of an execution cancelled before it ran."""
    return ExecutionCancelled(
        **_common(request, producer),
        payload=ExecutionCancelledPayload(
            reason="cancelled while queued", cancelled_by=cancelled_by, was_running=False
        ),
    )


def _common(request: ExecutionRequest, producer: ProducerInfo) -> dict[str, object]:
    return {
        "producer": producer,
        "correlation_id": request.correlation_id,
        "execution_id": request.execution_id,
        "user_id": request.user_id,
    }
