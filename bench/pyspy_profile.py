"""A sampling profile of one running service with py-spy (root dev dependency), and the
functions it spent the most time in.

py-spy attaches to the process by pid (ptrace: root, or CAP_SYS_PTRACE), needs no change to
the service, and writes a speedscope file (open it at speedscope.app, or any speedscope viewer).
Idle samples (threads waiting in epoll or on a lock) are left out, so the shares are of the
time the service was on a CPU or runnable.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FunctionTime:
    function: str  # "name (file:line)"
    own: float  # share of samples with this function on top of the stack
    total: float  # share of samples with this function anywhere in the stack


def top_functions(speedscope: dict[str, Any], limit: int = 15) -> tuple[int, list[FunctionTime]]:
    """(samples, the ``limit`` functions with the most own time) over every thread's profile
    in a speedscope file of py-spy's ("sampled" profiles; each sample a stack, root first, with
    a weight: py-spy's is the sampling interval in seconds)."""
    frames = speedscope["shared"]["frames"]
    own: Counter[int] = Counter()
    anywhere: Counter[int] = Counter()
    samples, weights = 0, 0.0
    for profile in speedscope["profiles"]:
        if profile.get("type") != "sampled":
            continue
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            samples += 1
            weights += weight
            if stack:
                own[stack[-1]] += weight
            for index in set(stack):
                anywhere[index] += weight
    if not weights:
        return 0, []

    def name(index: int) -> str:
        frame = frames[index]
        where = Path(frame.get("file") or "?").name
        return f"{frame['name']} ({where}:{frame.get('line') or '?'})"

    return samples, [
        FunctionTime(name(i), weight / weights, anywhere[i] / weights)
        for i, weight in own.most_common(limit)
    ]


def pyspy_command() -> str | None:
    """py-spy next to this interpreter (the workspace's virtualenv), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, output: Path, rate: int = 100) -> str:
    """Run ``py-spy record`` on ``pid`` for ``seconds``; returns py-spy's own summary line.
    Raises RuntimeError with py-spy's message when it cannot attach."""
    command = pyspy_command()
    if command is None:
        raise RuntimeError("py-spy is not installed (uv sync --all-packages installs it)")
    output.parent.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        command,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate),
        "--format",
        "speedscope",
        "--output",
        str(output),
        "--nonblocking",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    text = out.decode(errors="replace").strip()
    if process.returncode != 0:
        raise RuntimeError(f"py-spy record --pid {pid} failed: {text}")
    return next((line for line in text.splitlines() if "Samples" in line), text)


def summary(output: Path, limit: int = 15) -> list[str]:
    samples, functions = top_functions(json.loads(output.read_text()), limit)
    lines = [f"  {samples} samples; top {len(functions)} functions by own time:"]
    lines.append(f"    {'own':>6} {'total':>6}  function")
    lines.extend(f"    {f.own:6.1%} {f.total:6.1%}  {f.function}" for f in functions)
    return lines
