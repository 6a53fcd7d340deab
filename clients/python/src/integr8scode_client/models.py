"""What the API answers, as pydantic models.

Every model tolerates fields it doesn't know (``extra="allow"``): a newer API adds fields, an
older client keeps working and still shows them through ``model_extra``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

TERMINAL_STATUSES = frozenset({"completed", "failed", "timed_out", "cancelled"})


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class Token(_Answer):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the scheme, not a secret)
    expires_in: int | None = None


class Registration(_Answer):
    username: str
    detail: str = ""


class Me(_Answer):
    id: str
    username: str
    role: str
    created_at: datetime | None = None


class Runtime(_Answer):
    """A language the platform runs; ``limits`` (defaults and maximums) and ``compiles`` where
    the API tells them."""

    language: str
    versions: list[str]
    default_version: str
    script_file: str | None = None
    compiles: bool | None = None
    limits: dict[str, Any] | None = None


class ResourceUsage(_Answer):
    cpu_time_ms: float
    wall_time_ms: float
    peak_memory_kb: int


class StatusChange(_Answer):
    status: str
    at: datetime


class CompileResult(_Answer):
    """The compile phase of a compiled language."""

    exit_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    wall_time_ms: float | None = None


class ExecutionLinks(_Answer):
    """Where to look next, relative to the API's origin: the page and the timeline."""

    page: str | None = None
    timeline: str | None = None


class Execution(_Answer):
    """``GET /api/v1/executions/{id}``: status, output, measurements and trace id."""

    execution_id: str
    status: str
    language: str
    language_version: str
    stdout: str | None = None
    stderr: str | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    exit_code: int | None = None
    resource_usage: ResourceUsage | None = None
    error: str | None = None
    queue_position: int | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    trace_id: str | None = None
    status_history: list[StatusChange] = Field(default_factory=list)
    verdict: str | None = None
    encoding: Literal["utf-8", "base64"] = "utf-8"
    compile: CompileResult | None = None
    links: ExecutionLinks | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def stdout_bytes(self) -> bytes:
        """The program's stdout as bytes (decoded from base64 when it was asked so)."""
        return _as_bytes(self.stdout, self.encoding)

    def stderr_bytes(self) -> bytes:
        return _as_bytes(self.stderr, self.encoding)


def _as_bytes(text: str | None, encoding: str) -> bytes:
    if text is None:
        return b""
    return base64.b64decode(text) if encoding == "base64" else text.encode()


class Submitted(_Answer):
    """``POST /api/v1/execute``'s answer: the id and status; ``result`` when the API already
    had the whole result (``wait=True`` and the run ended in time)."""

    execution_id: str
    status: str
    result: Execution | None = None


class BatchItemError(_Answer):
    """Why one submission of a batch became no execution: 422 bad input, 429 rate limited
    (``retry_after_s``), 503 a dependency down."""

    status: int
    detail: str
    retry_after_s: float | None = None


class BatchItem(_Answer):
    """One entry of a batch's answer, in the submissions' order: an ``execution_id``, or that
    submission's ``error``."""

    index: int | None = None
    execution_id: str | None = None
    status: str | None = None
    error: BatchItemError | None = None


class ExecutionPage(_Answer):
    items: list[Execution]
    limit: int
    offset: int
    total: int


class CancelAccepted(_Answer):
    execution_id: str
    status: str = "cancelling"


class StatusEvent(_Answer):
    """One server-sent status change of an execution."""

    execution_id: str
    status: str
    at: datetime | None = None


class TimelinePhase(_Answer):
    """A phase of an execution's timeline (accepted, publish, queue_wait, sandbox,
    result_stored, status_delivered): ``start_ms`` is the offset from the trace's start, and
    ``span_ids`` the spans it was derived from. Read loosely: every field optional."""

    name: str = "?"
    span_ids: list[str] = Field(default_factory=list)
    parts: list[dict[str, Any]] = Field(default_factory=list)
    service: str | None = None
    start_ms: float | None = Field(
        default=None, validation_alias=AliasChoices("start_ms", "offset_ms", "start_offset_ms")
    )
    duration_ms: float | None = Field(
        default=None, validation_alias=AliasChoices("duration_ms", "duration")
    )
    critical: bool | None = Field(
        default=None, validation_alias=AliasChoices("critical", "on_critical_path")
    )


class DlqRetry(_Answer):
    retry: int | None = None
    backoff_ms: float | None = None
    published_ms: float | None = None


class NotificationTimeline(_Answer):
    """One notification: its channel, outcome, attempts and dead-letter retries."""

    channel: str = "?"
    status: str | None = None
    attempts: int | None = None
    start_ms: float | None = None
    duration_ms: float | None = None
    retries: list[DlqRetry] = Field(default_factory=list)


class CriticalSegment(_Answer):
    span_id: str | None = None
    name: str | None = None
    service: str | None = None
    duration_ms: float | None = None


class Timeline(_Answer):
    """``GET /api/v1/executions/{id}/timeline``: the phases in order, the total, whether the
    trace is complete (and what is missing), the trace id and the Jaeger link."""

    execution_id: str | None = None
    trace_id: str | None = None
    complete: bool | None = None
    missing: Any = None
    reason: str | None = None
    total_ms: float | None = None
    result_ms: float | None = None
    phases: list[TimelinePhase] = Field(
        default_factory=list, validation_alias=AliasChoices("phases", "spans")
    )
    notifications: list[NotificationTimeline] = Field(default_factory=list)
    critical_path: list[CriticalSegment] = Field(default_factory=list)
    jaeger_url: str | None = None
    links: Any = None

    def on_critical_path(self, phase: TimelinePhase) -> bool:
        """Whether one of the phase's spans is on the critical path (or the phase says so)."""
        if phase.critical is not None:
            return phase.critical
        critical = {segment.span_id for segment in self.critical_path if segment.span_id}
        return any(span_id in critical for span_id in phase.span_ids)

    def jaeger_link(self) -> str | None:
        """The Jaeger link, wherever the API put it (``jaeger_url`` or ``links``)."""
        if self.jaeger_url:
            return self.jaeger_url
        links = self.links
        if isinstance(links, dict):
            for key in ("jaeger", "jaeger_ui", "trace"):
                if isinstance(links.get(key), str):
                    return str(links[key])
            for value in links.values():
                if isinstance(value, str) and value.startswith("http"):
                    return value
        if isinstance(links, list):
            for value in links:
                if isinstance(value, str) and value.startswith("http"):
                    return value
                if isinstance(value, dict) and isinstance(
                    value.get("href") or value.get("url"), str
                ):
                    return str(value.get("href") or value.get("url"))
        return None


class WebhookView(_Answer):
    url: str
    has_secret: bool = False


class SlackView(_Answer):
    target: str


class NotificationSettings(_Answer):
    webhook: WebhookView | None = None
    slack: SlackView | None = None
    updated_at: datetime | None = None


__all__ = [
    "TERMINAL_STATUSES",
    "BatchItem",
    "BatchItemError",
    "CancelAccepted",
    "CompileResult",
    "CriticalSegment",
    "DlqRetry",
    "Execution",
    "ExecutionLinks",
    "ExecutionPage",
    "Me",
    "NotificationSettings",
    "NotificationTimeline",
    "Registration",
    "ResourceUsage",
    "Runtime",
    "SlackView",
    "StatusChange",
    "StatusEvent",
    "Submitted",
    "Timeline",
    "TimelinePhase",
    "Token",
    "WebhookView",
]
