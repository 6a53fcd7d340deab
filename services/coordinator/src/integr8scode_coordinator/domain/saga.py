"""The execution saga: its states, steps and the rules for moving between them.

validate → reserve_slot → run → store_result → release; a failure in any step compensates
(releases what was reserved) and ends the saga in exactly one terminal state.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from integr8scode_coordinator.domain.inputs import NUL, storable_text
from integr8scode_events import StoredTraceContext


class SagaStatus(enum.StrEnum):
    QUEUED = "queued"  # accepted, waiting for a slot
    RESERVED = "reserved"  # a slot is held, the sandbox has not started
    RUNNING = "running"  # the sandbox runs
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {SagaStatus.COMPLETED, SagaStatus.FAILED, SagaStatus.TIMED_OUT, SagaStatus.CANCELLED}
)
ACTIVE = frozenset({SagaStatus.RESERVED, SagaStatus.RUNNING})


class SagaStep(enum.StrEnum):
    VALIDATE = "validate"
    RESERVE_SLOT = "reserve_slot"
    RUN = "run"
    STORE_RESULT = "store_result"
    RELEASE = "release"
    COMPENSATE = "compensate"


SAGA_NAME = "execution"


@dataclass(frozen=True)
class RequestFile:
    """An extra file of the run as the request carried it (``encoding``: utf-8 or base64)."""

    name: str
    content: str
    encoding: str = "utf-8"


@dataclass(frozen=True)
class ExecutionRequest:
    """What the client asked to run (from ``execution.requested``). Fields after
    ``memory_mb`` came with issue 14; a saga stored before them reads with their defaults
    (``None`` limits: the coordinator's defaults)."""

    execution_id: str
    user_id: str
    correlation_id: str
    script: str
    language: str
    language_version: str
    stdin: str
    timeout_s: float
    memory_mb: int
    cpu_time_s: float | None = None
    max_processes: int | None = None
    max_output_kb: int | None = None
    stdin_encoding: str = "utf-8"
    args: tuple[str, ...] = ()
    files: tuple[RequestFile, ...] = ()
    expected_stdout: str | None = None
    # Lower compile-phase limits the client asked for (``CompileLimits`` as a plain dict of the
    # ones it gave); None: the coordinator's own.
    compile_limits: dict[str, float] | None = None

    def storable(self) -> tuple[ExecutionRequest, str | None]:
        """This request as the store can hold it (no NUL character in any string), and why it
        can't run if a NUL had to go. Stdin and file contents keep their bytes: text with a NUL
        is carried as base64 instead. A NUL in the script, an argument, a file name or the
        expected output is replaced, and the request is refused (the API refuses it too)."""
        problems: list[str] = []
        changes: dict[str, Any] = {}
        for name in ("script", "language", "language_version", "expected_stdout"):
            value = getattr(self, name)
            if value is not None and NUL in value:
                problems.append(f"{name} contains a NUL character")
                changes[name] = storable_text(value)
        if any(NUL in arg for arg in self.args):
            problems.append("an argument contains a NUL character")
            changes["args"] = tuple(storable_text(arg) for arg in self.args)
        if self.stdin_encoding == "utf-8" and NUL in self.stdin:
            changes["stdin"], changes["stdin_encoding"] = _base64(self.stdin), "base64"
        files = tuple(_storable_file(f) for f in self.files)
        if files != self.files:
            changes["files"] = files
        problems += [
            f"file name {f.name!r} contains a NUL character" for f in self.files if NUL in f.name
        ]
        if not changes:
            return self, None
        return replace(self, **changes), (problems[0] if problems else None)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ExecutionRequest:
        """The request as ``dataclasses.asdict`` stored it (lists back to tuples)."""
        fields = dict(doc)
        fields["args"] = tuple(doc.get("args") or ())
        fields["files"] = tuple(RequestFile(**f) for f in doc.get("files") or ())
        return cls(**fields)


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _storable_file(file: RequestFile) -> RequestFile:
    name, content, encoding = storable_text(file.name), file.content, file.encoding
    if encoding == "utf-8" and NUL in content:
        content, encoding = _base64(content), "base64"
    return RequestFile(name, content, encoding)


@dataclass
class Saga:
    """The persisted state of one execution's saga."""

    execution_id: str
    user_id: str
    correlation_id: str
    request: ExecutionRequest
    status: SagaStatus
    enqueued_at: datetime
    # The consume span of its ``execution.requested``: admission, run and recovery continue it.
    trace: StoredTraceContext = field(default_factory=StoredTraceContext)
    owner: str | None = None
    lease_until: datetime | None = None
    cancel_requested: bool = False
    steps: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


class TerminalReason(enum.StrEnum):
    """Why a saga ended other than by running to its end."""

    INVALID_REQUEST = "invalid_request"
    LIMIT_EXCEEDED = "limit_exceeded"
    PLATFORM_ERROR = "platform_error"
