"""The default sandbox runner: bubblewrap namespaces + rlimits + (where allowed) cgroups.

One run is one process chain, started with ``posix_spawn`` (no ``preexec_fn``, safe in a
threaded process) in a process group of its own::

    [sh: join cgroups] → [setpriv: host uid 65534] → bwrap → sh (pid 1) → prlimit → interpreter

- ``sh`` writes its pid into the run's ``cgroup.procs`` files and execs on, so every process of
  the run is inside the cgroups from its first instruction (only when cgroups are usable).
- ``setpriv`` (only when the coordinator runs as root) drops to host uid/gid 65534 before bwrap,
  so the user namespace maps the sandbox's uid to an unprivileged host uid rather than to root.
- ``bwrap`` unshares every namespace (user, pid, net, ipc, uts, cgroup, mount), drops all
  capabilities, forbids nested user namespaces, clears the environment, binds only ``/usr`` (and
  the merged-/usr links) and an interpreter's own prefix read-only, mounts a fresh ``/proc`` and
  a minimal ``/dev`` (read-only, plus a size-limited ``/dev/shm``), size-limited tmpfs at
  ``/work`` (the working directory) and ``/tmp``, a synthetic ``/etc/passwd`` and ``/etc/group``,
  and remounts ``/`` read-only. The script and stdin come from memfds handed to this one child
  only (every other descriptor is closed in the child), so no other run — and nothing on the
  host's disk — ever sees them.
- ``sh`` is the sandbox's pid 1 (``SANDBOX_INIT``): it runs the program as its child, reaps
  orphans, and exits only when the runner releases it — once every process of the run has
  closed stdout and stderr. A script's background processes are part of its run, and a fork
  bomb whose first shell returns at once still meets the process limit.
- ``prlimit`` sets the rlimits *inside* the new user namespace, where RLIMIT_NPROC counts only
  this run's processes: CPU seconds, address space (RLIMIT_DATA for node), file size, open
  files, processes, no core files.

A wall-clock deadline, the cancel event, output floods and (with cgroups) the OOM-kill and
fork-refused counters all end a run the same way: SIGKILL to the sandbox's pid 1, which takes
the whole pid namespace with it, then to the launcher's process group as a backstop.

Measurements: CPU time from ``wait4`` (pid 1 reaps every process of the run and is reaped by
bwrap's monitor, which we reap); the kernel drops the usage of processes it kills with a pid
namespace, so before a kill the runner reads the run's process tree in ``/proc`` and keeps the
larger figure. Peak memory from the memory cgroup when there is one (the whole run, tmpfs
included). Without it, from samples of the process tree's VmHWM every ``sample_interval_s``:
``wait4``'s ru_maxrss can't serve, as ``posix_spawn`` children start in this process's address
space and inherit its high-water mark at exec (it counts only when it is above ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from integr8scode_coordinator.adapters.cgroups import CgroupHost, RunCgroup
from integr8scode_coordinator.adapters.runtime_detection import (
    Interpreter,
    Mount,
    detect_interpreters,
    runtimes_of,
    system_mounts,
)
from integr8scode_coordinator.domain.runtimes import LANGUAGES, WORKDIR, LanguageSpec, match_version
from integr8scode_coordinator.domain.sandbox import (
    MIB,
    PLATFORM_FAILURE,
    CappedOutput,
    KillReason,
    Observation,
    Runtime,
    SandboxLimits,
    SandboxRequest,
    SandboxResult,
    SandboxUnavailableError,
    classify,
)
from integr8scode_telemetry import attributes as a

log = logging.getLogger(__name__)

NOBODY = 65534
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# Descriptors as the launcher chain sees them. bwrap consumes 3-6; pid 1 gets 0, 7, 8, 9 and
# hands the program 0 (stdin), 8 as stdout and 9 as stderr. 1 and 2 carry only the launcher's
# own diagnostics (bwrap's setup errors), so they can't be confused with the program's output.
STATUS_FD, SCRIPT_FD, PASSWD_FD, GROUP_FD, RELEASE_FD, STDOUT_FD, STDERR_FD = 3, 4, 5, 6, 7, 8, 9
PASSWD = f"sandbox:x:{NOBODY}:{NOBODY}:sandbox:{WORKDIR}:/bin/sh\n".encode()
GROUP = f"sandbox:x:{NOBODY}:\n".encode()
JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
# pid 1 of the sandbox. bwrap's own reaper won't do: its monitor exits as soon as the reaper
# reports the exit code, before reaping it, which loses the run's CPU time and peak RSS to
# wait4(). This shell keeps its diagnostics out of the program's stderr (no "Killed" lines),
# runs the program, lets go of stdout/stderr, and waits for the runner's release (EOF on fd 7).
SANDBOX_INIT = (
    'exec 2>/dev/null 1>&8 8>&-; (exec "$@" 2>&9 9>&- 7<&-); rc=$?; '
    "exec 1>&- 9>&-; read _ <&7; exit $rc"
)
LAUNCHER_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
# Dispositions a Python parent leaves ignored (SIG_IGN survives exec); programs expect defaults.
RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
DIAGNOSTICS_CAP = 64 * 1024


@dataclass(frozen=True)
class BubblewrapConfig:
    bwrap: str
    prlimit: str
    setpriv: str | None  # set when we are root: drop to host uid 65534 before bwrap
    interpreters: tuple[Interpreter, ...]
    mounts: tuple[Mount, ...]
    shell: str = "/bin/sh"
    flood_factor: int = 10  # stop a program after this many times the output cap
    poll_interval_s: float = 0.05  # cgroup counters, while a run is going
    sample_interval_s: float = 0.02  # peak memory from /proc, when there is no memory cgroup
    kill_grace_s: float = 1.0  # after SIGKILL to pid 1, before SIGKILL to the process group


def rlimit_args(spec: LanguageSpec, limits: SandboxLimits, *, pids_cgroup: bool) -> list[str]:
    """``prlimit`` options for a run: soft = hard, except CPU (SIGXCPU first, SIGKILL 1s later).

    RLIMIT_NPROC counts the sandbox's pid 1 too, hence +1. With a pids cgroup (which also counts
    bwrap's monitor, so ``max_processes + 2``) it is a backstop one above, so the cgroup refuses
    first and its counter records that it did."""
    nproc = limits.max_processes + (2 if pids_cgroup else 1)
    args = [
        "--core=0",
        f"--fsize={limits.max_file_size_mb * MIB}",
        f"--nofile={limits.max_open_files}",
        f"--nproc={nproc}",
        f"--{spec.memory_rlimit}={limits.memory_mb * MIB}",
    ]
    if limits.cpu_time_s:
        soft = max(1, math.ceil(limits.cpu_time_s))
        args.append(f"--cpu={soft}:{soft + 1}")
    return args


def build_command(
    config: BubblewrapConfig,
    spec: LanguageSpec,
    interpreter: Interpreter,
    limits: SandboxLimits,
    *,
    cgroup_procs: Sequence[str] = (),
    pids_cgroup: bool = False,
    files: bool = True,
    command: Sequence[str] | None = None,
) -> list[str]:
    """The whole argv of one run. With ``files`` the child must hold the script, passwd, group
    and status descriptors at ``SCRIPT_FD``, ``PASSWD_FD``, ``GROUP_FD`` and ``STATUS_FD``."""
    c = config
    tmpfs = str(limits.tmpfs_size_mb * MIB)
    argv: list[str] = []
    if cgroup_procs:
        argv += [c.shell, "-c", JOIN_CGROUPS, "sandbox-launch", *cgroup_procs, "--"]
    if c.setpriv:
        argv += [c.setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    argv += [
        c.bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",
        "--uid", str(NOBODY),
        "--gid", str(NOBODY),
        "--hostname", "sandbox",
        "--clearenv",
        "--setenv", "PATH", SANDBOX_PATH,
        "--setenv", "HOME", WORKDIR,
        "--setenv", "LANG", "C.UTF-8",
    ]  # fmt: skip
    for mount in c.mounts:
        argv += [f"--{mount.kind}", mount.source, mount.dest]
    for directory in interpreter.binds:
        argv += ["--ro-bind", directory, directory]
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--remount-ro", "/dev",
        "--size", tmpfs, "--tmpfs", "/dev/shm",  # noqa: S108 - inside the sandbox
        "--size", tmpfs, "--tmpfs", "/tmp",  # noqa: S108 - a private tmpfs
        "--size", tmpfs, "--tmpfs", WORKDIR,
        "--chdir", WORKDIR,
    ]  # fmt: skip
    if files:
        argv += [
            "--ro-bind-data", str(PASSWD_FD), "/etc/passwd",
            "--ro-bind-data", str(GROUP_FD), "/etc/group",
            "--file", str(SCRIPT_FD), spec.script_path,
            "--json-status-fd", str(STATUS_FD),
        ]  # fmt: skip
    rlimits = rlimit_args(spec, limits, pids_cgroup=pids_cgroup)
    argv += ["--remount-ro", "/", "--as-pid-1", "--"]
    if files:
        argv += [c.shell, "-c", SANDBOX_INIT, "sandbox-init"]
    argv += [c.prlimit, *rlimits, "--"]
    return argv + list(command or spec.command(interpreter.path, limits))


def verify_interpreters(config: BubblewrapConfig) -> list[Interpreter]:
    """The interpreters that answer ``--version`` inside a sandbox (a missing library or bind
    shows up here, at start, rather than in a user's run). Raises when none does."""
    working: list[Interpreter] = []
    failures: list[str] = []
    limits = SandboxLimits(timeout_s=10, memory_mb=256)
    for interpreter in config.interpreters:
        spec = LANGUAGES[interpreter.language]
        argv = build_command(
            config, spec, interpreter, limits, files=False, command=[interpreter.path, "--version"]
        )
        done = subprocess.run(  # noqa: S603 - our own fixed command line
            argv, capture_output=True, text=True, timeout=30, env=LAUNCHER_ENV, check=False
        )
        if done.returncode == 0:
            working.append(interpreter)
        else:
            failures.append(f"{interpreter.path}: {done.stderr.strip()[:300]}")
            log.warning("interpreter %s fails in the sandbox: %s", interpreter.path, done.stderr)
    if not working:
        raise SandboxUnavailableError(
            "no interpreter runs inside bubblewrap: " + ("; ".join(failures) or "none found")
        )
    return working


class BubblewrapRunner:
    """``SandboxRunner`` on this machine. Build it with ``detect()``."""

    name = "bubblewrap"

    def __init__(
        self,
        config: BubblewrapConfig,
        cgroups: CgroupHost,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.config = config
        self.cgroups = cgroups
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self._cleanups: set[asyncio.Task[None]] = set()

    @classmethod
    def detect(
        cls,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        extra_commands: Mapping[str, Sequence[str]] | None = None,
        use_cgroups: bool = True,
    ) -> BubblewrapRunner:
        """Find bwrap, the interpreters and the cgroups this host allows, and check that each
        interpreter starts inside a sandbox. Raises ``SandboxUnavailableError`` when nothing
        can run."""
        bwrap = shutil.which("bwrap")
        prlimit = shutil.which("prlimit")
        if bwrap is None:
            raise SandboxUnavailableError("bubblewrap (bwrap) is not installed")
        if prlimit is None or not os.path.realpath(prlimit).startswith("/usr/"):
            raise SandboxUnavailableError("prlimit (util-linux) is not installed under /usr")
        setpriv = None
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                log.warning("setpriv not found: sandboxes map to host root (still without caps)")
        mounts = system_mounts()
        if os.path.exists("/etc/ld.so.cache"):
            mounts.append(Mount("ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"))
        config = BubblewrapConfig(
            bwrap=bwrap,
            prlimit=os.path.realpath(prlimit),
            setpriv=setpriv,
            interpreters=tuple(detect_interpreters(extra_commands=extra_commands)),
            mounts=tuple(mounts),
        )
        config = dataclasses.replace(config, interpreters=tuple(verify_interpreters(config)))
        cgroups = CgroupHost.probe() if use_cgroups else CgroupHost(memory=None, pids=None)
        runner = cls(config, cgroups, tracer_provider)
        log.info(
            "sandbox runner %s: runtimes %s; limits enforced by %s",
            cls.name,
            ", ".join(f"{i.language} {i.full_version} ({i.path})" for i in config.interpreters),
            ", ".join(runner.enforced_limits),
        )
        return runner

    @property
    def enforced_limits(self) -> tuple[str, ...]:
        """Which mechanism enforces what on this host, for logs and spans."""
        found = [f"cgroup.{c}" for c in self.cgroups.enforced]
        found += ["rlimit.as|data", "rlimit.nproc", "rlimit.cpu", "rlimit.fsize", "rlimit.nofile"]
        found += ["tmpfs.size", "wall_clock", "output_cap"]
        return tuple(found)

    def runtimes(self) -> list[Runtime]:
        return runtimes_of(self.config.interpreters)

    # -- run -------------------------------------------------------------------------------

    def _resolve(self, request: SandboxRequest) -> tuple[LanguageSpec, Interpreter] | str:
        spec = LANGUAGES.get(request.language)
        offered = [i for i in self.config.interpreters if i.language == request.language]
        if spec is None or not offered:
            have = ", ".join(sorted({i.language for i in self.config.interpreters}))
            return f"language {request.language!r} is not available (have: {have})"
        versions = [i.version for i in offered]
        version = match_version(request.language_version, versions, offered[0].version)
        if version is None:
            return (
                f"{request.language} {request.language_version} is not available "
                f"(have: {', '.join(versions)})"
            )
        return spec, next(i for i in offered if i.version == version)

    async def run(self, request: SandboxRequest, cancel: asyncio.Event) -> SandboxResult:
        limits = request.limits
        with self._tracer.start_as_current_span(
            "sandbox.run",
            attributes={
                a.SANDBOX_RUNNER: self.name,
                a.SANDBOX_TIMEOUT_S: limits.timeout_s,
                a.SANDBOX_MEMORY_MB: limits.memory_mb,
                a.EXECUTION_ID: request.execution_id,
                a.EXECUTION_LANGUAGE: request.language,
                a.EXECUTION_LANGUAGE_VERSION: request.language_version,
                "sandbox.enforced": list(self.enforced_limits),
            },
        ) as span:
            result = await self._run(request, cancel)
            if result.exit_code is not None:
                span.set_attribute(a.SANDBOX_EXIT_CODE, result.exit_code)
            if result.signal is not None:
                span.set_attribute("sandbox.signal", result.signal)
            span.set_attribute(a.EXECUTION_STATUS, result.outcome)
            span.set_attribute("sandbox.cpu_time_ms", result.cpu_time_ms)
            span.set_attribute("sandbox.peak_memory_kb", result.peak_memory_kb)
            if result.error:
                span.set_attribute("sandbox.error", result.error)
            if result.error and result.error.startswith(PLATFORM_FAILURE):
                span.set_status(Status(StatusCode.ERROR, result.error))
            return result

    async def _run(self, request: SandboxRequest, cancel: asyncio.Event) -> SandboxResult:
        resolved = self._resolve(request)
        if isinstance(resolved, str):
            return _no_run("failed", resolved)
        if cancel.is_set():
            return _no_run("cancelled", "cancelled before the sandbox started")
        spec, interpreter = resolved
        limits = request.limits
        cgroup = self._cgroup_for(limits)
        try:
            argv = build_command(
                self.config,
                spec,
                interpreter,
                limits,
                cgroup_procs=cgroup.procs_files if cgroup else (),
                pids_cgroup=cgroup is not None and cgroup.pids is not None,
            )
            watch = _Watch(self.config, limits, cgroup)
            try:
                try:
                    watch.spawn(argv, _ChildFiles(request))
                except OSError as exc:
                    return _no_run("failed", f"{PLATFORM_FAILURE}: {exc}")
                await watch.wait(cancel)
            finally:
                watch.finish()  # kills and reaps if the run did not end (a cancelled task)
            obs = watch.observation(spec)
            outcome, exit_code, sig, error = classify(obs, limits, watch.flood_limit)
            return SandboxResult(
                outcome=outcome,
                exit_code=exit_code,
                signal=sig,
                stdout=watch.stdout.text(),
                stderr=watch.stderr.text(),
                stdout_truncated=watch.stdout.truncated,
                stderr_truncated=watch.stderr.truncated,
                cpu_time_ms=obs.cpu_time_ms,
                wall_time_ms=watch.wall_time_ms,
                peak_memory_kb=watch.peak_memory_kb(),
                error=error,
            )
        finally:
            if cgroup is not None and not cgroup.remove():
                # The last processes of a killed pid namespace can take a moment to leave.
                task = asyncio.get_running_loop().create_task(_remove_later(cgroup))
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)

    def _cgroup_for(self, limits: SandboxLimits) -> RunCgroup | None:
        if not self.cgroups.enforced:
            return None
        try:
            # pids.max also covers bwrap's two processes (the monitor and pid 1).
            return self.cgroups.create(limits.memory_mb, limits.max_processes + 2)
        except OSError as exc:
            log.warning("could not create a cgroup for a run (%s); rlimits only", exc)
            return None


async def _remove_later(cgroup: RunCgroup, attempts: int = 200) -> None:
    for _ in range(attempts):
        await asyncio.sleep(0.01)
        if cgroup.remove():
            return
    log.warning("cgroup %s still busy after %d attempts; left behind", cgroup, attempts)


def _no_run(outcome: Literal["failed", "cancelled"], error: str) -> SandboxResult:
    return SandboxResult(
        outcome=outcome,
        exit_code=None,
        signal=None,
        stdout="",
        stderr="",
        stdout_truncated=False,
        stderr_truncated=False,
        cpu_time_ms=0.0,
        wall_time_ms=0.0,
        peak_memory_kb=0,
        error=error,
    )


def _high(fd: int) -> int:
    """The same file at a descriptor >= 10, close-on-exec, so ``posix_spawn``'s dup2 actions
    onto 0..9 never overwrite a source they still need."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _memfd(name: str, data: bytes, *, read_only: bool = False) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        if read_only:  # the program may read its stdin, not rewrite it
            ro = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
            os.close(fd)
            fd = ro
    except BaseException:
        os.close(fd)
        raise
    return _high(fd)


def _close(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class _ChildFiles:
    """What one launcher gets, at fixed numbers (see ``STATUS_FD``…): memfds with stdin, the
    script, passwd and group; the read end of the release pipe; the write ends of the output,
    diagnostics and status pipes. The parent keeps the other ends."""

    def __init__(self, request: SandboxRequest) -> None:
        self.child: dict[int, int] = {}  # child's fd → ours
        self.readers: dict[str, int] = {}
        self.release = -1  # closing it lets the sandbox's pid 1 exit
        try:
            self.child[0] = _memfd("stdin", request.stdin.encode(), read_only=True)
            self.child[SCRIPT_FD] = _memfd("script", request.script.encode())
            self.child[PASSWD_FD] = _memfd("passwd", PASSWD)
            self.child[GROUP_FD] = _memfd("group", GROUP)
            for name, child_fd in (
                ("stdout", STDOUT_FD),
                ("stderr", STDERR_FD),
                ("diagnostics", 1),
                ("status", STATUS_FD),
            ):
                r, w = os.pipe()
                os.set_blocking(r, False)
                self.readers[name] = r
                self.child[child_fd] = _high(w)
            self.child[2] = _high(os.dup(self.child[1]))
            r, self.release = os.pipe()
            self.child[RELEASE_FD] = _high(r)
        except BaseException:
            self.close_child_ends()
            _close([*self.readers.values(), self.release])
            raise

    def file_actions(self) -> list[tuple[int, ...]]:
        """dup2 ours onto the child's numbers, then close every other descriptor >= 10: this
        process may hold inheritable descriptors it was started with, and they must not reach
        the sandbox."""
        actions: list[tuple[int, ...]] = [
            (os.POSIX_SPAWN_DUP2, ours, theirs) for theirs, ours in self.child.items()
        ]
        for name in os.listdir("/proc/self/fd"):
            if int(name) >= 10:
                actions.append((os.POSIX_SPAWN_CLOSE, int(name)))
        return actions

    def close_child_ends(self) -> None:
        """After the spawn the child holds its own copies; ours would keep the pipes open."""
        _close(self.child.values())
        self.child.clear()


class _Watch:
    """One spawned run: its pipes, its deadline, and how it gets killed."""

    def __init__(
        self, config: BubblewrapConfig, limits: SandboxLimits, cgroup: RunCgroup | None
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
        self._cpu_at_kill = 0.0  # ms, of the process tree just before a kill
        self._sampled_peak_kb = 0  # largest VmHWM seen in the process tree
        self._own_peak_kb = 0  # ours at spawn: a child's ru_maxrss starts from it
        self._sampling = cgroup is None or cgroup.memory is None
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

    def spawn(self, argv: list[str], files: _ChildFiles) -> None:
        """Start the chain; from here on this watch owns the parent's ends."""
        self._open = {fd: name for name, fd in files.readers.items()}
        self._release = files.release
        self._started = time.monotonic()
        self._own_peak_kb = _vm_hwm_kb(os.getpid()) if self._sampling else 0
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
            _close([self._release])
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
        if _parent_of(child_pid) != self.pid:
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
        self._cpu_at_kill = self._sample()
        if not self._signal_init():
            self._kill_group()
        self._loop.call_later(self.config.kill_grace_s, self._kill_group)

    def _sample(self) -> float:
        """CPU ms of the run's live process tree; records its peak memory on the way."""
        if self._init_pid <= 0:
            return 0.0
        cpu_ms, peak_kb = tree_usage(self._init_pid)
        self._sampled_peak_kb = max(self._sampled_peak_kb, peak_kb)
        return cpu_ms

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
                    if self.cgroup is not None:
                        timeout = min(timeout, self.config.poll_interval_s)
                    if self._sampling:
                        timeout = min(timeout, self.config.sample_interval_s)
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
                    if self._sampling:
                        self._sample()
                    if self.cgroup is not None:
                        self._check_cgroup(self.cgroup)
        finally:
            cancelled.cancel()
        # Every writer died with the pid namespace, so the pipes end right away.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drained), self.config.kill_grace_s)
        self.finish()

    def _check_cgroup(self, cgroup: RunCgroup) -> None:
        if cgroup.oom_kills() > 0:
            self.kill("memory")
        elif cgroup.process_limit_hit():
            self.kill("processes")

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
        _close(fd for fd in (self._pidfd, self._init_pidfd) if fd >= 0)
        self._pidfd = self._init_pidfd = -1

    def _close_reader(self, fd: int) -> None:
        self._loop.remove_reader(fd)
        del self._open[fd]
        os.close(fd)

    def _close_readers(self) -> None:
        for fd in list(self._open):
            self._close_reader(fd)

    # -- results ---------------------------------------------------------------------------

    @property
    def wall_time_ms(self) -> float:
        return max(0.0, (self._ended or time.monotonic()) - self._started) * 1000

    def observation(self, spec: LanguageSpec) -> Observation:
        cpu_ms = self._cpu_at_kill
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


def _stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after "(comm)" (which may hold spaces): field 3 of proc(5) first."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return []


def _parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if len(fields) > 1 else None


def _vm_hwm_kb(pid: int) -> int:
    """A live process's peak RSS (VmHWM), in kB; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            line = next((line for line in f if line.startswith("VmHWM:")), "")
    except OSError:
        return 0
    return int(line.split()[1]) if line else 0


def tree_usage(root: int, limit: int = 4096) -> tuple[float, int]:
    """(CPU ms, largest peak RSS kB) of a live process tree: each process's own CPU plus what it
    reaped from its children (utime, stime, cutime, cstime), and its VmHWM."""
    cpu_ticks = 0
    peak_kb = 0
    pending = [root]
    seen = 0
    while pending and seen < limit:
        pid = pending.pop()
        seen += 1
        fields = _stat_fields(pid)
        if len(fields) > 14:
            cpu_ticks += sum(int(v) for v in fields[11:15])
        peak_kb = max(peak_kb, _vm_hwm_kb(pid))
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    pending.extend(int(child) for child in f.read().split())
        except (OSError, ValueError):
            continue
    return cpu_ticks * 1000 / os.sysconf("SC_CLK_TCK"), peak_kb
