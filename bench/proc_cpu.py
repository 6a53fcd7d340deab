"""CPU time of the stack's processes, read from /proc: per component, over a measured phase.

A component is one or more pid files of the stack's run directory (deploy/local/lib.sh:
``$INTEGR8SCODE_RUN/pids/<name>.pid``, by default the repo's ``.local``). Its CPU time is that of
the whole process tree under each pid: every live process's own user + system time, plus the
``cutime``/``cstime`` of each, which hold the time of the children it has already reaped (the
coordinator's sandboxes end and are reaped between two snapshots). A child that outlives its
parent and is re-parented elsewhere is lost; none of the stack's processes do that.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")

# The stack's components as the run directory names them (pid files), in print order. The
# Mongo-wire server is FerretDB plus, on FERRETDB_BACKEND=postgresql, PostgreSQL's processes.
COMPONENTS: dict[str, tuple[str, ...]] = {
    "api": ("svc-api",),
    "coordinator (+ sandboxes)": ("svc-coordinator",),
    "dlq-processor": ("svc-dlq-processor",),
    "event-replay": ("svc-event-replay",),
    "notifier": ("svc-notifier",),
    "mongo-wire (ferretdb [+ postgres])": ("ferretdb", "postgres"),
    "kafka": ("kafka",),
    "redis": ("redis",),
    "collector": ("collector",),
    "jaeger": ("jaeger",),
}
BENCH_CLIENT = "bench client (this process)"
# Components also shown in their three parts (``tree_parts``): the service itself, its live
# children (the span export child) and the children it reaped (the coordinator's sandboxes), so
# a setting's cost in a service shows apart from what its sandboxes took meanwhile.
SPLIT = ("api", "coordinator (+ sandboxes)")
PARTS = ("itself", "live children (span export)", "reaped children (sandboxes)")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/<pid>/stat this module needs; times in clock ticks."""

    pid: int
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def ticks(self) -> int:
        """Its own time and its reaped children's."""
        return self.utime + self.stime + self.cutime + self.cstime


def parse_stat(text: str) -> ProcStat:
    """One /proc/<pid>/stat line. The command name (field 2) may hold spaces and parentheses,
    so the fields after it are found from its last closing parenthesis."""
    head, sep, tail = text.rpartition(")")
    if not sep:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    pid = int(head.split("(", 1)[0])
    fields = tail.split()
    # tail starts at field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),
    )


def read_stats(proc: Path = PROC) -> dict[int, ProcStat]:
    """Every process's stat; processes that exit while being read are skipped."""
    stats: dict[int, ProcStat] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
        stats[stat.pid] = stat
    return stats


def tree_ticks(root: int, stats: Mapping[int, ProcStat]) -> int | None:
    """CPU ticks of ``root`` and its live descendants, reaped children included; None when
    ``root`` is not running."""
    if root not in stats:
        return None
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid].ticks
        todo.extend(children.get(pid, ()))
    return total


def tree_parts(root: int, stats: Mapping[int, ProcStat]) -> tuple[int, int, int] | None:
    """``tree_ticks`` of ``root`` in three parts: its own time, its live descendants' (with
    what they reaped), and the time of the children ``root`` itself reaped; None when ``root``
    is not running."""
    total = tree_ticks(root, stats)
    if total is None:
        return None
    own = stats[root].utime + stats[root].stime
    reaped = stats[root].cutime + stats[root].cstime
    return own, total - own - reaped, reaped


def parse_cpu_line(text: str) -> tuple[int, int]:
    """(busy, total) ticks of all CPUs from /proc/stat's first ``cpu`` line; busy is all but
    idle and iowait."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            # user nice system idle iowait irq softirq steal guest guest_nice; guest time is
            # already counted in user and nice.
            total = sum(values[:8])
            return total - values[3] - values[4], total
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def read_pid(run_dir: Path, name: str) -> int | None:
    try:
        return int((run_dir / "pids" / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class CpuSnapshot:
    roots: dict[str, tuple[int, ...]]  # component -> the pids it was measured from
    ticks: dict[str, int]
    machine_busy: int
    machine_total: int
    parts: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # SPLIT components


@dataclass(frozen=True)
class CpuUse:
    seconds: dict[str, float]  # per component; NaN when it (re)started during the phase
    machine_busy_s: float
    cores_s: float  # machine wall time x cores: what was available
    # SPLIT components in PARTS (their sum is the component's seconds): not counted again
    parts: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    @property
    def attributed_s(self) -> float:
        return sum(v for v in self.seconds.values() if not math.isnan(v))

    @property
    def unattributed_s(self) -> float:
        """Busy CPU of everything else: other processes on the machine, the kernel's own."""
        return self.machine_busy_s - self.attributed_s


def snapshot(run_dir: Path, proc: Path = PROC) -> CpuSnapshot:
    stats = read_stats(proc)
    roots: dict[str, tuple[int, ...]] = {}
    ticks: dict[str, int] = {}
    parts: dict[str, tuple[int, int, int]] = {}
    for component, names in COMPONENTS.items():
        pids = tuple(p for p in (read_pid(run_dir, n) for n in names) if p is not None)
        if component in SPLIT and len(pids) == 1:
            split = tree_parts(pids[0], stats)
            if split is not None:  # its parts, and their sum is its tree
                roots[component], ticks[component], parts[component] = pids, sum(split), split
            continue
        counted = [t for t in (tree_ticks(p, stats) for p in pids) if t is not None]
        if counted:
            roots[component], ticks[component] = pids, sum(counted)
    me = tree_ticks(os.getpid(), stats)
    if me is not None:
        roots[BENCH_CLIENT], ticks[BENCH_CLIENT] = (os.getpid(),), me
    busy, total = parse_cpu_line((proc / "stat").read_text())
    return CpuSnapshot(roots, ticks, busy, total, parts)


def difference(before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
    hz = os.sysconf("SC_CLK_TCK")
    seconds: dict[str, float] = {}
    for component, ticks in after.ticks.items():
        same = before.roots.get(component) == after.roots[component]
        seconds[component] = (ticks - before.ticks[component]) / hz if same else float("nan")
    parts: dict[str, tuple[float, float, float]] = {}
    for component, (own, live, reaped) in after.parts.items():
        if component in before.parts and not math.isnan(seconds.get(component, math.nan)):
            own_0, live_0, reaped_0 = before.parts[component]
            parts[component] = ((own - own_0) / hz, (live - live_0) / hz, (reaped - reaped_0) / hz)
    return CpuUse(
        seconds=seconds,
        machine_busy_s=(after.machine_busy - before.machine_busy) / hz,
        cores_s=(after.machine_total - before.machine_total) / hz,
        parts=parts,
    )
