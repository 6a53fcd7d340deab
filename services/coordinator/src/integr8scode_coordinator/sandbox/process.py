"""Run one sandboxed process chain and watch it: spawn, output, kill, measurements, result.

The launcher chain (built by ``command.build_command``) gets its inputs at fixed descriptor
numbers (``descriptors.ChildFiles``): memfds that only this one child sees, and pipes whose
parent ends the ``SandboxProcess`` reads. It is started with ``posix_spawn`` (no
``preexec_fn``, safe in a threaded process) in a process group of its own; the sandbox's pid 1
exits only when the ``SandboxProcess`` releases it, once every process of the run has closed
stdout and stderr. A ``SandboxProcess`` is a context manager: leaving it finishes the run
(killed and reaped if it did not end), and ``result`` then reads it as an outcome.

A wall-clock deadline, the cancel event, output floods, (with cgroups) the OOM-kill and
fork-refused counters, and the watch of the run's process tree all end a run the same way:
SIGKILL to the sandbox's pid 1, which takes the whole pid namespace with it, then to the
launcher's process group as a backstop. The watch (``proc_tree``, every ``poll_interval_s``, or
every ``sample_interval_s`` when it also holds memory) enforces:

- CPU: the whole run's CPU time (live processes plus what they reaped) against ``cpu_time_s``;
  per-process RLIMIT_CPU stays as a backstop. A run of n busy processes can pass the limit by at
  most one interval's worth of CPU (n cores times the interval) plus the time to kill.
- Memory, only without a memory cgroup: the run's resident anonymous and shared memory, summed
  over its processes (shared pages once), against ``memory_mb``. See the README for what this
  fallback can't see.

Measurements: CPU time from ``wait4`` (pid 1 reaps every process of the run and is reaped by
bwrap's monitor, which we reap); the kernel drops the usage of processes it kills with a pid
namespace, so before a kill the runner reads the run's process tree in ``/proc`` and keeps the
larger figure. Peak memory from the memory cgroup when there is one (the whole run, tmpfs
included). Without it, from samples of the process tree every ``sample_interval_s`` (the
largest VmHWM of one process or sum of resident memory of all, whichever is larger):
``wait4``'s ru_maxrss can't serve, as ``posix_spawn`` children start in this process's address
space and inherit its high-water mark at exec (it counts only when it is above ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import time
from types import TracebackType
from typing import Any, Protocol

from integr8scode_coordinator.sandbox.cgroups import RunCgroup
from integr8scode_coordinator.sandbox.descriptors import ChildFiles, close_fds
from integr8scode_coordinator.sandbox.languages import LanguageSpec
from integr8scode_coordinator.sandbox.model import SandboxLimits, SandboxResult
from integr8scode_coordinator.sandbox.outcome import (
    CappedOutput,
    KillReason,
    Observation,
    classify,
)
from integr8scode_coordinator.sandbox.proc_tree import (
    NOTHING,
    TreeUsage,
    parent_of,
    proportional_kb,
    tree_usage,
    vm_hwm_kb,
)

LAUNCHER_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
# Dispositions a Python parent leaves ignored (SIG_IGN survives exec); programs expect defaults.
RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
DIAGNOSTICS_CAP = 64 * 1024


class ProcessTimings(Protocol):
    """How a ``SandboxProcess`` polls and kills (``BubblewrapConfig`` carries these)."""

    @property
    def flood_factor(self) -> int:
        """Stop a program after this many times the output cap."""
        ...

    @property
    def poll_interval_s(self) -> float:
        """Process tree (CPU) and cgroup counters, while a run is going."""
        ...

    @property
    def sample_interval_s(self) -> float:
        """Process tree with its memory, when there is no memory cgroup."""
        ...

    @property
    def kill_grace_s(self) -> float:
        """After SIGKILL to pid 1, before SIGKILL to the process group."""
        ...


class SandboxProcess:
    """One spawned run: its pipes, its deadline, and how it gets killed."""

    def __init__(
        self, config: ProcessTimings, limits: SandboxLimits, cgroup: RunCgroup | None
    ) -> None:
        self.config = config
        self.limits = limits
        self.cgroup = cgroup
        self.flood_limit = limits.max_output_bytes * config.flood_factor
        self.sinks = {
            "stdout": CappedOutput(limits.max_output_bytes, self.flood_limit),
            "stderr": CappedOutput(limits.max_output_bytes, self.flood_limit),
            "diagnostics": CappedOutput(DIAGNOSTICS_CAP, self.flood_limit),
        }
        self.killed_for: KillReason | None = None
        self.pid = -1
        self._loop = asyncio.get_running_loop()
        self._pidfd = -1
        self._init_pidfd = -1  # the sandbox's pid 1: killing it ends the whole pid namespace
        self._init_pid = -1
        self._cpu_ms = 0.0  # the most CPU the process tree was seen to have used
        self._sampled_peak_kb = 0  # largest VmHWM or tree sum of resident memory seen
        self._own_peak_kb = 0  # ours at spawn: a child's ru_maxrss starts from it
        # Without a memory cgroup this watch is the memory limit (and the peak memory figure).
        self._sampling = cgroup is None or cgroup.memory is None
        self._memory_limit_kb = limits.memory_mb * 1024 if self._sampling else None
        self._cpu_limit_ms = limits.cpu_time_s * 1000 if limits.cpu_time_s else None
        self._release = -1
        self._open: dict[int, str] = {}  # read ends still open → stream name
        self._status = bytearray()
        self._exit_code: int | None = None  # the program's, from bwrap's status record
        self._exited: asyncio.Future[resource.struct_rusage | None] = self._loop.create_future()
        self._drained: asyncio.Future[None] = self._loop.create_future()
        self._started = 0.0
        self._ended = 0.0
        self._rusage: resource.struct_rusage | None = None
        self._finished = False

    @property
    def stdout(self) -> CappedOutput:
        return self.sinks["stdout"]

    @property
    def stderr(self) -> CappedOutput:
        return self.sinks["stderr"]

    def spawn(self, argv: list[str], files: ChildFiles) -> None:
        """Start the chain; from here on this watch owns the parent's ends."""
        self._open = {fd: name for name, fd in files.readers.items()}
        self._release = files.release
        self._started = time.monotonic()
        self._own_peak_kb = vm_hwm_kb(os.getpid()) if self._sampling else 0
        try:
            self.pid = os.posix_spawn(
                argv[0],
                argv,
                LAUNCHER_ENV,
                file_actions=files.file_actions(),
                setpgroup=0,
                setsigmask=(),
                setsigdef=RESET_SIGNALS,
            )
        except OSError:
            self._close_readers()
            self._let_go()
            raise
        finally:
            files.close_child_ends()
        self._pidfd = os.pidfd_open(self.pid)
        self._loop.add_reader(self._pidfd, self._on_exit)
        for fd in self._open:
            self._loop.add_reader(fd, self._on_readable, fd)

    # -- callbacks -------------------------------------------------------------------------

    def _on_exit(self) -> None:
        rusage: resource.struct_rusage | None = None
        try:
            pid, _, rusage = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else (a waitpid(-1) child watcher)
            pid = self.pid
        if pid == 0:
            return
        self._ended = time.monotonic()
        self._loop.remove_reader(self._pidfd)
        if not self._exited.done():
            self._exited.set_result(rusage)

    def _on_readable(self, fd: int) -> None:
        name = self._open[fd]
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:  # EOF: every writer is gone
            self._close_reader(fd)
            if name == "status":
                self._status_line(bytes(self._status))
            if "stdout" not in self._open.values() and "stderr" not in self._open.values():
                self._let_go()  # every process of the run has closed its output: release pid 1
            if not self._open and not self._drained.done():
                self._drained.set_result(None)
        elif name == "status":
            self._status += chunk
            *lines, rest = bytes(self._status).split(b"\n")
            self._status = bytearray(rest)
            for line in lines:
                self._status_line(line)
        else:
            self.sinks[name].feed(chunk)
            if self.sinks[name].flooded:
                self.kill("output")

    def _let_go(self) -> None:
        if self._release >= 0:
            close_fds([self._release])
            self._release = -1

    def _status_line(self, line: bytes) -> None:
        try:
            record = json.loads(line) if line.strip() else {}
        except ValueError:
            return
        if "exit-code" in record:
            self._exit_code = int(record["exit-code"])
        if "child-pid" in record and self._init_pidfd < 0:
            self._adopt_init(int(record["child-pid"]))

    def _adopt_init(self, child_pid: int) -> None:
        try:
            fd = os.pidfd_open(child_pid)
        except OSError:
            return  # already gone
        # The pidfd pins a process; make sure it is bwrap's child, not a recycled pid.
        if parent_of(child_pid) != self.pid:
            os.close(fd)
            return
        self._init_pidfd = fd
        self._init_pid = child_pid
        if self.killed_for is not None:
            self._signal_init()

    # -- stop ------------------------------------------------------------------------------

    def kill(self, reason: KillReason) -> None:
        """SIGKILL the sandbox's pid 1 (the kernel then kills its whole pid namespace), and the
        launcher's process group a moment later if it is still there."""
        if self.killed_for is not None or self._exited.done():
            return
        self.killed_for = reason
        self._sample()  # the kernel forgets the CPU of what a pid namespace's end kills
        if not self._signal_init():
            self._kill_group()
        self._loop.call_later(self.config.kill_grace_s, self._kill_group)

    def _sample(self) -> TreeUsage:
        """The run's live process tree; keeps the most CPU and the peak memory seen."""
        if self._init_pid <= 0:
            return NOTHING
        usage = tree_usage(self._init_pid, memory=self._sampling)
        self._cpu_ms = max(self._cpu_ms, usage.cpu_ms)
        # The run's, not one process's: the sum (where forks share pages it is an upper bound).
        self._sampled_peak_kb = max(self._sampled_peak_kb, usage.peak_kb, usage.resident_kb)
        return usage

    def _watch(self) -> None:
        """One poll while the run goes: CPU of the whole tree, its memory when no cgroup holds
        it, and the cgroup's counters."""
        usage = self._sample()
        if self._cpu_limit_ms is not None and self._cpu_ms >= self._cpu_limit_ms:
            self.kill("cpu")
        elif self._over_memory(usage):
            self.kill("memory")
        elif self.cgroup is not None:
            self._check_cgroup(self.cgroup)

    def _over_memory(self, usage: TreeUsage) -> bool:
        limit = self._memory_limit_kb
        if limit is None or usage.resident_kb <= limit:
            return False
        # Forked processes share copy-on-write pages: count each page once before a verdict.
        return proportional_kb(usage.pids) > limit

    def _signal_init(self) -> bool:
        if self._init_pidfd < 0:
            return False
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._init_pidfd, signal.SIGKILL)
        return True

    def _kill_group(self) -> None:
        if self.pid > 0 and not self._exited.done():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    async def wait(self, cancel: asyncio.Event) -> None:
        deadline = self._started + self.limits.timeout_s
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            while not self._exited.done():
                waiting: set[asyncio.Future[Any]] = {self._exited}
                timeout = self.config.kill_grace_s
                if self.killed_for is None:
                    waiting.add(cancelled)
                    timeout = max(0.0, deadline - time.monotonic())
                    timeout = min(timeout, self._interval)
                await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if self._exited.done():
                    break
                if self.killed_for is not None:
                    self._kill_group()  # still there after the grace: again, to the group
                elif cancelled.done():
                    self.kill("cancel")
                elif time.monotonic() >= deadline:
                    self.kill("timeout")
                else:
                    self._watch()
        finally:
            cancelled.cancel()
        # Every writer died with the pid namespace, so the pipes end right away.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drained), self.config.kill_grace_s)
        self.finish()

    @property
    def _interval(self) -> float:
        """How often the run is watched: the memory sampling interval when this watch enforces
        memory, else the (longer) poll interval, which is enough for CPU and cgroup counters."""
        if self._sampling:
            return self.config.sample_interval_s
        return self.config.poll_interval_s

    def _check_cgroup(self, cgroup: RunCgroup) -> None:
        if cgroup.oom_kills() > 0:
            self.kill("memory")
        elif cgroup.process_limit_hit():
            self.kill("processes")

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()  # kills and reaps if the run did not end (a cancelled task)

    def finish(self) -> None:
        """Release every descriptor; if the caller was cancelled mid-run, kill and reap first
        (synchronously: after SIGKILL that returns at once), so nothing is left behind."""
        if self._finished or self.pid <= 0:
            return
        self._finished = True
        if not self._exited.done():
            self.killed_for = self.killed_for or "cancel"
            self._signal_init()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            try:
                _, _, rusage = os.wait4(self.pid, 0)
            except ChildProcessError:
                rusage = None
            self._ended = time.monotonic()
            self._exited.set_result(rusage)
            if self._pidfd >= 0:
                self._loop.remove_reader(self._pidfd)
        self._rusage = self._exited.result()
        self._close_readers()
        self._let_go()
        close_fds(fd for fd in (self._pidfd, self._init_pidfd) if fd >= 0)
        self._pidfd = self._init_pidfd = -1

    def _close_reader(self, fd: int) -> None:
        self._loop.remove_reader(fd)
        del self._open[fd]
        os.close(fd)

    def _close_readers(self) -> None:
        for fd in list(self._open):
            self._close_reader(fd)

    # -- results ---------------------------------------------------------------------------

    def result(self, spec: LanguageSpec) -> SandboxResult:
        """What the run reports, once finished. Read it while the run's cgroup still exists:
        its counters (OOM kills, refused forks, peak memory) are part of the result."""
        obs = self.observation(spec)
        outcome, exit_code, sig, error = classify(obs, self.limits, self.flood_limit)
        return SandboxResult(
            outcome=outcome,
            exit_code=exit_code,
            signal=sig,
            stdout=self.stdout.text(),
            stderr=self.stderr.text(),
            stdout_truncated=self.stdout.truncated,
            stderr_truncated=self.stderr.truncated,
            cpu_time_ms=obs.cpu_time_ms,
            wall_time_ms=self.wall_time_ms,
            peak_memory_kb=self.peak_memory_kb(),
            error=error,
            stdout_bytes=self.stdout.data(),
            stderr_bytes=self.stderr.data(),
        )

    @property
    def wall_time_ms(self) -> float:
        return max(0.0, (self._ended or time.monotonic()) - self._started) * 1000

    def observation(self, spec: LanguageSpec) -> Observation:
        cpu_ms = self._cpu_ms
        if self._rusage is not None:
            cpu_ms = max(cpu_ms, (self._rusage.ru_utime + self._rusage.ru_stime) * 1000)
        setup_error = None
        if self._exit_code is None and self.killed_for is None:
            diagnostics = self.sinks["diagnostics"].text().strip()
            setup_error = diagnostics or "the sandbox ended before the program ran"
        return Observation(
            exit_code=self._exit_code,
            killed_for=self.killed_for,
            setup_error=setup_error,
            oom_kills=self.cgroup.oom_kills() if self.cgroup else 0,
            process_limit_hit=self.cgroup.process_limit_hit() if self.cgroup else False,
            cpu_time_ms=cpu_ms,
            stderr=self.stderr.text(),
            stdout_truncated=self.stdout.truncated,
            stderr_truncated=self.stderr.truncated,
            markers=spec.markers,
        )

    def peak_memory_kb(self) -> int:
        peak = self.cgroup.peak_memory_kb() if self.cgroup else None
        if peak is not None:
            return peak
        seen = int(self._rusage.ru_maxrss) if self._rusage is not None else 0
        return max(seen if seen > self._own_peak_kb else 0, self._sampled_peak_kb)
