"""One execution's trace as the timeline reads it: plain spans, and the port that finds them.

The adapter (``adapters/jaeger_traces.py``) turns the trace backend's answer into these; the
derivation (``domain/timeline.py``) never sees the backend's format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

AttributeValue = str | int | float | bool


@dataclass(frozen=True)
class TraceSpan:
    """One span of a trace; times in microseconds since the epoch (the backend's unit)."""

    span_id: str
    parent_id: str | None
    service: str
    name: str
    start_us: int
    duration_us: int
    kind: str = "internal"  # server | client | producer | consumer | internal
    error: bool = False
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    def attr(self, key: str) -> AttributeValue | None:
        return self.attributes.get(key)


class TraceSource(Protocol):
    """Where traces are read from (the Jaeger query API in production)."""

    async def trace(self, trace_id: str) -> list[TraceSpan] | None:
        """The trace's spans; None when the backend has no such trace. Raises
        ``DependencyUnavailableError`` when the backend does not answer."""
        ...

    def trace_url(self, trace_id: str) -> str:
        """Where a person opens the whole trace (the Jaeger UI)."""
        ...
