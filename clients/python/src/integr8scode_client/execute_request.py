"""What a client sends: the body of ``POST /api/v1/execute`` and its options."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Each limit optional: one left out gets the platform's (or the language's) default."""

    timeout_s: float | None = None
    memory_mb: int | None = None
    cpu_time_s: float | None = None
    max_processes: int | None = None
    max_output_kb: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class WorkFile:
    """An extra file in the run's working directory; bytes are sent as base64."""

    name: str
    content: str | bytes


@dataclass(frozen=True)
class ExecuteRequest:
    script: str
    language: str
    language_version: str | None = None
    stdin: str | bytes = ""
    args: Sequence[str] = ()
    files: Sequence[WorkFile] = ()
    expected_stdout: str | None = None
    limits: Limits | None = None
    base64: bool = field(default=False)
    """Send everything as base64 (``?base64=true``). Implied when stdin or a file is bytes."""

    @property
    def needs_base64(self) -> bool:
        return (
            self.base64
            or isinstance(self.stdin, bytes)
            or any(isinstance(f.content, bytes) for f in self.files)
        )

    def as_json(self) -> dict[str, Any]:
        """The JSON body; only what is set, so an older API sees only the fields it knows."""
        encode = _b64 if self.needs_base64 else _text
        body: dict[str, Any] = {"script": encode(self.script), "language": self.language}
        if self.language_version is not None:
            body["language_version"] = self.language_version
        if self.stdin:
            body["stdin"] = encode(self.stdin)
        if self.args:
            body["args"] = list(self.args)
        if self.files:
            body["files"] = [{"name": f.name, "content": encode(f.content)} for f in self.files]
        if self.expected_stdout is not None:
            body["expected_stdout"] = encode(self.expected_stdout)
        if self.limits is not None and self.limits.as_json():
            body["limits"] = self.limits.as_json()
        return body


def _b64(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return base64.b64encode(data).decode("ascii")


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()


__all__ = ["ExecuteRequest", "Limits", "WorkFile"]
