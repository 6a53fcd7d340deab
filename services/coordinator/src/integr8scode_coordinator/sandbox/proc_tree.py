"""What a live process tree uses, read from ``/proc``: CPU time and resident memory.

The sandbox watcher (``process``) reads the run's tree from its pid 1 every poll, to
enforce the CPU limit on the whole run (and, without a memory cgroup, the memory limit) and to
keep the figures the kernel forgets when a pid namespace is killed.

- CPU: each process's own ``utime + stime`` plus ``cutime + cstime``, what it has reaped from its
  children (``/proc/<pid>/stat``, thread-group totals). A process that exited and was reaped
  lives on in its parent's figures; one not yet reaped is still in the tree (a zombie keeps its
  times). Reading parents before their children means a child reaped mid-walk is missed for
  one sample, never counted twice.
- Memory: ``RssAnon + RssShmem`` per process from ``/proc/<pid>/status`` (cheap; file-backed
  pages are the host's shared page cache, not the run's own). Summed over processes it counts
  copy-on-write pages a fork shares once per process, so it is only an upper bound; when it is
  above a limit, ``proportional_kb`` gives the exact figure (``Pss_Anon + Pss_Shmem`` from
  ``smaps_rollup``: a page shared by n processes counts 1/n in each), which costs a page-table
  walk per process and is therefore only read then.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class TreeUsage:
    cpu_ms: float  # CPU of the live tree plus everything it reaped
    peak_kb: int  # largest VmHWM of one process (0 when memory was not read)
    resident_kb: int  # sum of RssAnon + RssShmem: an upper bound of the tree's own memory
    pids: tuple[int, ...]  # the processes read, parents first


NOTHING = TreeUsage(cpu_ms=0.0, peak_kb=0, resident_kb=0, pids=())


def stat_fields(pid: int, proc: Path = PROC) -> list[str]:
    """``/proc/<pid>/stat`` after "(comm)" (which may hold spaces): field 3 of proc(5) first."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return []
    return text.rpartition(")")[2].split()


def parent_of(pid: int, proc: Path = PROC) -> int | None:
    fields = stat_fields(pid, proc)
    return int(fields[1]) if len(fields) > 1 else None


def status_kb(pid: int, keys: Iterable[str], proc: Path = PROC) -> dict[str, int]:
    """kB figures of ``/proc/<pid>/status`` (``VmHWM``, ``RssAnon``…); empty if it is gone."""
    wanted = {f"{key}:" for key in keys}
    found: dict[str, int] = {}
    try:
        with (proc / str(pid) / "status").open() as f:
            for line in f:
                name, _, rest = line.partition("\t")
                if name in wanted:
                    found[name[:-1]] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return found


def vm_hwm_kb(pid: int, proc: Path = PROC) -> int:
    """A live process's peak RSS (VmHWM), in kB; 0 if it is gone."""
    return status_kb(pid, ("VmHWM",), proc).get("VmHWM", 0)


def _children(pid: int, proc: Path) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(proc / str(pid) / "task"):
            found += [
                int(c) for c in (proc / str(pid) / "task" / task / "children").read_text().split()
            ]
    except (OSError, ValueError):
        pass
    return found


def tree_usage(
    root: int, *, memory: bool = True, proc: Path = PROC, limit: int = 4096
) -> TreeUsage:
    """CPU (and with ``memory``, resident memory) of the tree under ``root``, at most ``limit``
    processes (a run has ``max_processes``)."""
    ticks = 0
    peak_kb = resident_kb = 0
    pids: list[int] = []
    pending = [root]
    while pending and len(pids) < limit:
        pid = pending.pop(0)
        fields = stat_fields(pid, proc)
        if len(fields) <= 14:
            continue  # gone since its parent listed it
        pids.append(pid)
        ticks += sum(int(v) for v in fields[11:15])
        if memory:
            kb = status_kb(pid, ("VmHWM", "RssAnon", "RssShmem"), proc)
            peak_kb = max(peak_kb, kb.get("VmHWM", 0))
            resident_kb += kb.get("RssAnon", 0) + kb.get("RssShmem", 0)
        pending += _children(pid, proc)
    return TreeUsage(
        cpu_ms=ticks * 1000 / os.sysconf("SC_CLK_TCK"),
        peak_kb=peak_kb,
        resident_kb=resident_kb,
        pids=tuple(pids),
    )


def proportional_kb(pids: Iterable[int], proc: Path = PROC) -> int:
    """The processes' own memory with shared pages counted once: ``Pss_Anon + Pss_Shmem`` (or
    ``Pss`` on a kernel older than 5.x, without the split) summed from ``smaps_rollup``."""
    total = 0
    for pid in pids:
        figures: dict[str, int] = {}
        try:
            with (proc / str(pid) / "smaps_rollup").open() as f:
                for line in f:
                    name, _, rest = line.partition(":")
                    if name in ("Pss", "Pss_Anon", "Pss_Shmem"):
                        figures[name] = int(rest.split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if "Pss_Anon" in figures:
            total += figures["Pss_Anon"] + figures.get("Pss_Shmem", 0)
        else:
            total += figures.get("Pss", 0)
    return total
