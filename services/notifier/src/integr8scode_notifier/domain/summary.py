"""What a notification says about an execution, built from its terminal event.

Terminal events carry the outcome (exit code, measurements, output previews, error) but not the
language: that comes from the API's ``executions`` record, read by ``_id`` only. When it can't
be found the summary says ``unknown`` rather than failing the notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from integr8scode_events import (
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionTimedOut,
)
from integr8scode_events.payloads import OutputSummary, ResourceUsage

TerminalEvent = ExecutionCompleted | ExecutionFailed | ExecutionTimedOut | ExecutionCancelled

UNKNOWN = "unknown"
PREVIEW_CHARS = 500

STATUS_BY_EVENT = {
    "execution.completed": "completed",
    "execution.failed": "failed",
    "execution.timed_out": "timed_out",
    "execution.cancelled": "cancelled",
}


@dataclass(frozen=True)
class ExecutionFacts:
    """What the API recorded about the request (read-only)."""

    language: str
    language_version: str


@dataclass(frozen=True)
class ExecutionSummary:
    execution_id: str
    status: str
    language: str
    language_version: str
    exit_code: int | None
    resource_usage: ResourceUsage | None
    error: str | None
    stdout_preview: str
    stderr_preview: str
    output_truncated: bool
    finished_at: datetime
    url: str

    @property
    def duration_ms(self) -> float | None:
        return self.resource_usage.wall_time_ms if self.resource_usage else None

    def to_json(self) -> dict[str, Any]:
        """The ``execution`` object of a webhook body."""
        return {
            "execution_id": self.execution_id,
            "status": self.status,
            "language": self.language,
            "language_version": self.language_version,
            "exit_code": self.exit_code,
            "duration_ms": self.duration_ms,
            "resource_usage": self.resource_usage.model_dump() if self.resource_usage else None,
            "error": self.error,
            "stdout_preview": self.stdout_preview,
            "stderr_preview": self.stderr_preview,
            "output_truncated": self.output_truncated,
            "finished_at": self.finished_at.astimezone(UTC).isoformat(),
            "url": self.url,
        }


def execution_url(public_base_url: str, execution_id: str) -> str:
    return f"{public_base_url.rstrip('/')}/api/v1/executions/{execution_id}"


def summarize(
    event: TerminalEvent, facts: ExecutionFacts | None, public_base_url: str
) -> ExecutionSummary:
    """The summary of ``event``'s execution; ``facts`` None means the record wasn't found."""
    exit_code: int | None = None
    usage: ResourceUsage | None = None
    output: OutputSummary | None = None
    error: str | None = None
    if isinstance(event, ExecutionCompleted):
        completed = event.payload
        exit_code, usage, output = completed.exit_code, completed.resource_usage, completed.output
    elif isinstance(event, ExecutionFailed):
        p = event.payload
        exit_code, usage, output, error = p.exit_code, p.resource_usage, p.output, p.error
    elif isinstance(event, ExecutionTimedOut):
        usage, output = event.payload.resource_usage, event.payload.output
        error = f"wall-clock timeout of {event.payload.timeout_s:g}s exceeded"
    else:
        error = event.payload.reason
    execution_id = event.execution_id or UNKNOWN
    return ExecutionSummary(
        execution_id=execution_id,
        status=STATUS_BY_EVENT[event.event_type],
        language=facts.language if facts else UNKNOWN,
        language_version=facts.language_version if facts else UNKNOWN,
        exit_code=exit_code,
        resource_usage=usage,
        error=error,
        stdout_preview=(output.stdout_preview if output else "")[:PREVIEW_CHARS],
        stderr_preview=(output.stderr_preview if output else "")[:PREVIEW_CHARS],
        output_truncated=bool(output and output.truncated),
        finished_at=event.occurred_at,
        url=execution_url(public_base_url, execution_id),
    )
