"""How the CLI shows executions, runtimes and timelines: colour only on a terminal (and never
with ``NO_COLOR``), plain text otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TextIO

from integr8scode_client.models import Execution, Runtime, Timeline

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
_STATUS_COLOUR = {
    "completed": "green",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "yellow",
    "queued": "dim",
    "running": "cyan",
}


@dataclass(frozen=True)
class Style:
    """ANSI styling, or none. ``Style.for_stream`` decides from the stream and ``NO_COLOR``."""

    ansi: bool

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        return cls(ansi=_is_terminal(stream) and not os.environ.get("NO_COLOR"))

    def __call__(self, text: str, *styles: str) -> str:
        if not self.ansi or not styles:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\033[{codes}m{text}\033[0m"

    def status(self, status: str) -> str:
        return self(status, _STATUS_COLOUR.get(status, "bold"))

    @property
    def bar(self) -> str:
        return "█" if self.ansi else "#"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def execution_summary(execution: Execution, style: Style, base_url: str = "") -> list[str]:
    """Status, exit code, verdict, compile phase, error, resource usage, trace and page, one
    per line."""
    lines = [f"{style('execution', 'bold')} {execution.execution_id}"]
    outcome = f"status     {style.status(execution.status)}"
    if execution.exit_code is not None:
        outcome += f"  exit code {execution.exit_code}"
    lines.append(outcome)
    lines.append(f"language   {execution.language} {execution.language_version}")
    if execution.verdict:
        colour = "green" if execution.verdict == "accepted" else "red"
        lines.append(f"verdict    {style(execution.verdict, colour)}")
    if execution.compile is not None:
        c = execution.compile
        took = f" in {c.wall_time_ms:.0f} ms" if c.wall_time_ms is not None else ""
        lines.append(f"compile    exit code {c.exit_code}{took}")
        if c.exit_code not in (0, None) and c.stderr:
            lines.extend(f"  {line}" for line in c.stderr.rstrip("\n").splitlines())
    if execution.error:
        lines.append(f"error      {style(execution.error, 'red')}")
    if execution.queue_position is not None and not execution.terminal:
        lines.append(f"queue      {execution.queue_position} ahead")
    usage = execution.resource_usage
    if usage is not None:
        lines.append(
            f"resources  wall {usage.wall_time_ms:.0f} ms, cpu {usage.cpu_time_ms:.0f} ms, "
            f"peak memory {usage.peak_memory_kb / 1024:.1f} MiB"
        )
    truncated = [s for s in ("stdout", "stderr") if getattr(execution, f"{s}_truncated")]
    if truncated:
        lines.append(f"truncated  {', '.join(truncated)} (past the output limit)")
    if execution.trace_id:
        lines.append(f"trace      {execution.trace_id}")
    if execution.links is not None and execution.links.page:
        lines.append(f"page       {base_url}{execution.links.page}")
    return lines


def runtime_table(runtimes: list[Runtime], style: Style) -> list[str]:
    width = max((len(r.language) for r in runtimes), default=8)
    lines = [style(f"{'LANGUAGE':<{width}}  DEFAULT   VERSIONS  (limits: default/maximum)", "bold")]
    for r in sorted(runtimes, key=lambda r: r.language):
        extra = "  (compiled)" if r.compiles else ""
        limits = _limits_text(r.limits)
        lines.append(
            f"{r.language:<{width}}  {r.default_version:<8}  {', '.join(r.versions)}{extra}"
            + (f"  {style(limits, 'dim')}" if limits else "")
        )
    return lines


def _limits_text(limits: dict[str, object] | None) -> str:
    """``timeout 10/30 s, memory 128/512 MB``: default/maximum, where the API tells them."""
    if not limits:
        return ""
    defaults, maximums = limits.get("defaults"), limits.get("maximums")
    if not isinstance(defaults, dict) or not isinstance(maximums, dict):
        return ""
    shown = []
    for key, label, unit in (("timeout_s", "timeout", "s"), ("memory_mb", "memory", "MB")):
        if key in defaults and key in maximums:
            shown.append(f"{label} {defaults[key]:g}/{maximums[key]:g} {unit}")
    return ", ".join(shown)


def timeline_lines(timeline: Timeline, style: Style, width: int = 40) -> list[str]:
    """The phases as bars on one time axis: where each started, how long it took; the
    critical path marked with ``*``."""
    header = "timeline"
    if timeline.trace_id:
        header += f" of trace {timeline.trace_id}"
    lines = [style(header, "bold")]
    if timeline.complete is False:
        missing = f": missing {_text(timeline.missing)}" if timeline.missing else ""
        reason = f" ({timeline.reason})" if timeline.reason else ""
        lines.append(style(f"(incomplete{missing}){reason}", "yellow"))
    spans: list[tuple[str, float, float, bool]] = []
    cursor = 0.0
    for phase in timeline.phases:
        start = phase.start_ms if phase.start_ms is not None else cursor
        duration = phase.duration_ms or 0.0
        cursor = max(cursor, start + duration)
        label = f"{phase.service}: {phase.name}" if phase.service else phase.name
        spans.append((label, start, duration, timeline.on_critical_path(phase)))
    for note in timeline.notifications:
        start = note.start_ms if note.start_ms is not None else cursor
        duration = note.duration_ms or 0.0
        cursor = max(cursor, start + duration)
        outcome = ", ".join(
            str(x)
            for x in (note.status, f"{note.attempts} attempts" if note.attempts else None)
            if x
        )
        label = f"notify {note.channel}" + (f" ({outcome})" if outcome else "")
        spans.append((label, start, duration, False))
        for retry in note.retries:
            if retry.published_ms is not None:
                backoff = f" after {retry.backoff_ms:.0f} ms" if retry.backoff_ms else ""
                spans.append(
                    (f"  dlq retry {retry.retry or ''}{backoff}", retry.published_ms, 0.0, False)
                )
    total = timeline.total_ms or cursor
    if spans:
        label_width = min(44, max(len(s[0]) for s in spans))
        scale = width / total if total > 0 else 0.0
        for label, start, duration, critical in spans:
            begin = min(width - 1, int(start * scale))
            end = min(width, max(begin + 1, round((start + duration) * scale)))
            bar = " " * begin + style.bar * (end - begin)
            mark = "*" if critical else " "
            bar_text = style(bar.ljust(width), "yellow" if critical else "cyan")
            lines.append(
                f"{mark}{label[:label_width]:<{label_width}} |{bar_text}| {duration:9.1f} ms"
            )
    else:
        lines.append("(no phases)")
    if total:
        lines.append(f"total {total:.1f} ms")
    if timeline.result_ms:
        lines.append(f"result delivered at {timeline.result_ms:.1f} ms")
    link = timeline.jaeger_link()
    if link:
        lines.append(f"jaeger {link}")
    return lines


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
