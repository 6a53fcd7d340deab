"""Per-run cgroups (v1 ``memory`` and ``pids`` controllers), where the host lets us make them.

At start ``CgroupHost.probe`` finds this process's own cgroup in each controller, creates an
``integr8scode-sandbox`` child there and checks that a grandchild can be made and limited. Each
run then gets ``integr8scode-sandbox/<run>`` in both controllers: the launcher writes its pid to
``cgroup.procs`` before it execs bubblewrap, so everything the script starts is inside. The
cgroup gives what rlimits cannot: one memory limit for all processes of the run together (tmpfs
pages included), a process count that can't be dodged, the kernel's OOM-kill counter, the peak
memory of the whole run, and a "fork refused" counter.

Why not ``cpuacct`` too: in v1 every controller is its own hierarchy, and each move of the
launcher into one costs an RCU grace period (a few ms, about a quarter of a short run's total);
CPU time is measured well enough without it (see ``bubblewrap``).

A controller that is missing, read-only or not ours is skipped with the reason logged; the
runner then enforces what rlimits can (see the README's Sandbox section). cgroup v2 is not
handled yet: it needs a delegated subtree, and a host with one falls back to rlimits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "integr8scode-sandbox"
MIB = 1024 * 1024
STALE_AFTER_S = 6 * 3600  # far longer than any run may last


def own_cgroups(proc_cgroup: str) -> dict[str, str]:
    """controller → this process's cgroup path, from ``/proc/self/cgroup`` (v1 lines only)."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[1]:
            continue
        for controller in parts[1].split(","):
            paths[controller] = parts[2]
    return paths


def read_counter(text: str, key: str) -> int:
    """``key N`` from a flat keyed file (``memory.oom_control``, ``pids.events``); 0 if absent."""
    found = re.search(rf"^{re.escape(key)}\s+(\d+)\s*$", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    path.write_text(value)


@dataclass(frozen=True)
class CgroupHost:
    """Where per-run cgroups go; a controller is None when the host does not let us use it."""

    memory: Path | None
    pids: Path | None

    @property
    def enforced(self) -> tuple[str, ...]:
        named = (("memory", self.memory), ("pids", self.pids))
        return tuple(name for name, parent in named if parent)

    @classmethod
    def probe(cls, root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> CgroupHost:
        if proc_cgroup is None:
            proc_cgroup = _read(Path("/proc/self/cgroup"))
        own = own_cgroups(proc_cgroup)
        memory = _usable_parent(root, "memory", own, "memory.limit_in_bytes", str(64 * MIB))
        pids = _usable_parent(root, "pids", own, "pids.max", "64")
        host = cls(memory=memory, pids=pids)
        host.sweep()
        return host

    def sweep(self, older_than_s: float = STALE_AFTER_S) -> int:
        """Remove run cgroups a crashed coordinator left behind. Only empty ones (rmdir refuses
        others) and only old ones: another coordinator's brand-new, not yet joined cgroup on
        the same host must survive."""
        removed = 0
        cutoff = time.time() - older_than_s
        for parent in (self.memory, self.pids):
            for run in parent.glob("run-*") if parent else ():
                with contextlib.suppress(OSError):
                    if run.stat().st_mtime < cutoff:
                        run.rmdir()
                        removed += 1
        return removed

    def create(self, memory_mb: int, max_pids: int) -> RunCgroup:
        """A fresh cgroup per controller with the run's limits; OSError if the host refuses."""
        name = f"run-{uuid.uuid4().hex[:16]}"
        run = RunCgroup(
            memory=self.memory / name if self.memory else None,
            pids=self.pids / name if self.pids else None,
        )
        try:
            if run.memory is not None:
                run.memory.mkdir()
                _write(run.memory / "memory.limit_in_bytes", str(memory_mb * MIB))
                memsw = run.memory / "memory.memsw.limit_in_bytes"
                if memsw.exists():  # no swapping around the limit where swap accounting exists
                    with contextlib.suppress(OSError):
                        _write(memsw, str(memory_mb * MIB))
            if run.pids is not None:
                run.pids.mkdir()
                _write(run.pids / "pids.max", str(max_pids))
        except OSError:
            run.remove()
            raise
        return run


def _usable_parent(
    root: Path, controller: str, own: dict[str, str], limit_file: str, probe_value: str
) -> Path | None:
    mount = root / controller
    if controller not in own or not (mount / "cgroup.procs").exists():
        log.info("cgroup %s: controller not mounted at %s (v1); rlimits only", controller, mount)
        return None
    base = mount / own[controller].lstrip("/")
    if not base.is_dir():  # a cgroup namespace shows the mount's root as "/"
        base = mount
    parent = base / PARENT
    probe = parent / f"probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        parent.mkdir(exist_ok=True)
        probe.mkdir()
        try:
            _write(probe / limit_file, probe_value)
        finally:
            probe.rmdir()
    except OSError as exc:
        log.info(
            "cgroup %s: can't create limited child cgroups under %s (%s)", controller, base, exc
        )
        return None
    return parent


@dataclass(frozen=True)
class RunCgroup:
    memory: Path | None
    pids: Path | None

    @property
    def _dirs(self) -> list[Path]:
        return [d for d in (self.memory, self.pids) if d is not None]

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self._dirs]

    def oom_kills(self) -> int:
        if self.memory is None:
            return 0
        return read_counter(_read(self.memory / "memory.oom_control"), "oom_kill")

    def process_limit_hit(self) -> bool:
        if self.pids is None:
            return False
        return read_counter(_read(self.pids / "pids.events"), "max") > 0

    def peak_memory_kb(self) -> int | None:
        if self.memory is None:
            return None
        text = _read(self.memory / "memory.max_usage_in_bytes").strip()
        return int(text) // 1024 if text.isdigit() else None

    def remove(self) -> bool:
        """rmdir each; False if one is still busy (a process not yet fully gone)."""
        removed = True
        for directory in self._dirs:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                removed = False
        return removed
