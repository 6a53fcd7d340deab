"""Lean spans: the OpenTelemetry SDK's spans, started and ended for less CPU and fewer objects
for the garbage collector (``lean.py``). Shared by libs/events and libs/telemetry, which don't
import each other."""

from __future__ import annotations

from integr8scode_spans.lean import CurrentSpan, LeanSpan, start_current_span, start_span

__all__ = ["CurrentSpan", "LeanSpan", "start_current_span", "start_span"]
