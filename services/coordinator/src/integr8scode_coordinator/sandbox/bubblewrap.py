"""The default sandbox runner: bubblewrap namespaces + rlimits + (where allowed) cgroups.

One run is one process chain, started with ``posix_spawn`` (no ``preexec_fn``, safe in a
threaded process) in a process group of its own::

    [sh: join cgroups] → [setpriv: host uid 65534] → bwrap → sh (pid 1) → prlimit → interpreter

- ``sh`` writes its pid into the run's ``cgroup.procs`` files and execs on, so every process of
  the run is inside the cgroups from its first instruction (only when cgroups are usable).
- ``setpriv`` (only when the coordinator runs as root) drops to host uid/gid 65534 before bwrap,
  so the user namespace maps the sandbox's uid to an unprivileged host uid rather than to root.
- ``bwrap`` unshares every namespace (user, pid, net, ipc, uts, cgroup, mount), drops all
  capabilities, forbids nested user namespaces, clears the environment, binds only the
  directories programs need read-only (``detect``; checked by ``bind_audit``: no
  socket can be in them), mounts a fresh ``/proc`` and
  a minimal ``/dev`` (read-only, plus a size-limited ``/dev/shm``), size-limited tmpfs at
  ``/work`` (the working directory) and ``/tmp``, a synthetic ``/etc/passwd`` and ``/etc/group``,
  remounts ``/`` read-only, and installs the syscall filter (``seccomp``) last, so it holds for
  pid 1 and every process of the run. The script and stdin come from memfds handed to this one child
  only (every other descriptor is closed in the child), so no other run — and nothing on the
  host's disk — ever sees them.
- ``sh`` is the sandbox's pid 1 (``SANDBOX_INIT``): it runs the program as its child, reaps
  orphans, and exits only when the runner releases it — once every process of the run has
  closed stdout and stderr. A script's background processes are part of its run, and a fork
  bomb whose first shell returns at once still meets the process limit.
- ``prlimit`` sets the rlimits *inside* the new user namespace, where RLIMIT_NPROC counts only
  this run's processes: CPU seconds (a per-process backstop: ``process`` holds the whole
  run's CPU), file size, open files, processes, no core files, and, only without a memory
  cgroup, a far-off RLIMIT_DATA as a backstop to the memory watch.

Spawning the chain, watching it, killing it and measuring it: ``process``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from integr8scode_coordinator.sandbox.bind_audit import audit
from integr8scode_coordinator.sandbox.cgroups import CgroupHost, RunCgroup
from integr8scode_coordinator.sandbox.detect import (
    Interpreter,
    Mount,
    detect_interpreters,
    runtimes_of,
    system_mounts,
)
from integr8scode_coordinator.sandbox.languages import (
    LANGUAGES,
    WORKDIR,
    LanguageSpec,
    match_version,
)
from integr8scode_coordinator.sandbox.model import (
    MIB,
    PLATFORM_FAILURE,
    Runtime,
    SandboxLimits,
    SandboxRequest,
    SandboxResult,
    SandboxUnavailableError,
)
from integr8scode_coordinator.sandbox.outcome import classify
from integr8scode_coordinator.sandbox.process import (
    GROUP_FD,
    LAUNCHER_ENV,
    PASSWD_FD,
    SCRIPT_FD,
    SECCOMP_FD,
    STATUS_FD,
    ChildFiles,
    SandboxProcess,
)
from integr8scode_coordinator.sandbox.seccomp import SeccompUnavailableError, compile_filter
from integr8scode_telemetry import attributes as a

log = logging.getLogger(__name__)

NOBODY = 65534
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
PASSWD = f"sandbox:x:{NOBODY}:{NOBODY}:sandbox:{WORKDIR}:/bin/sh\n".encode()
GROUP = f"sandbox:x:{NOBODY}:\n".encode()
DATA_BACKSTOP_HEADROOM_MB = 512
JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
# pid 1 of the sandbox. bwrap's own reaper won't do: its monitor exits as soon as the reaper
# reports the exit code, before reaping it, which loses the run's CPU time and peak RSS to
# wait4(). This shell keeps its diagnostics out of the program's stderr (no "Killed" lines),
# runs the program, lets go of stdout/stderr, and waits for the runner's release (EOF on fd 7).
SANDBOX_INIT = (
    'exec 2>/dev/null 1>&8 8>&-; (exec "$@" 2>&9 9>&- 7<&-); rc=$?; '
    "exec 1>&- 9>&-; read _ <&7; exit $rc"
)


@dataclass(frozen=True)
class BubblewrapConfig:
    bwrap: str
    prlimit: str
    setpriv: str | None  # set when we are root: drop to host uid 65534 before bwrap
    interpreters: tuple[Interpreter, ...]
    mounts: tuple[Mount, ...]
    seccomp: bytes | None = None  # the compiled syscall filter (``seccomp``)
    shell: str = "/bin/sh"
    flood_factor: int = 10  # stop a program after this many times the output cap
    poll_interval_s: float = 0.05  # process tree CPU and cgroup counters, while a run is going
    sample_interval_s: float = 0.02  # the same plus its memory, when there is no memory cgroup
    kill_grace_s: float = 1.0  # after SIGKILL to pid 1, before SIGKILL to the process group


def data_backstop_mb(limits: SandboxLimits) -> int:
    """RLIMIT_DATA of each process when no memory cgroup holds the run: far enough above
    ``memory_mb`` that thread stacks (8 MiB each) and sparse mappings of real programs fit, close
    enough that one process can't get far past the limit between two samples of the watch."""
    return max(2 * limits.memory_mb, limits.memory_mb + DATA_BACKSTOP_HEADROOM_MB)


def rlimit_args(
    limits: SandboxLimits, *, pids_cgroup: bool, memory_cgroup: bool = False
) -> list[str]:
    """``prlimit`` options for a run: soft = hard, except CPU (SIGXCPU first, SIGKILL 1s later).

    RLIMIT_NPROC counts the sandbox's pid 1 too, hence +1. With a pids cgroup (which also counts
    bwrap's monitor, so ``max_processes + 2``) it is a backstop one above, so the cgroup refuses
    first and its counter records that it did. Memory: with a memory cgroup, none (the cgroup
    holds the whole run's resident memory; an address-space limit would refuse mmaps and thread
    stacks a program never touches); without one, RLIMIT_DATA as a backstop to the watch
    (``data_backstop_mb``). RLIMIT_CPU is per process: the watch holds the whole run's CPU."""
    nproc = limits.max_processes + (2 if pids_cgroup else 1)
    args = [
        "--core=0",
        f"--fsize={limits.max_file_size_mb * MIB}",
        f"--nofile={limits.max_open_files}",
        f"--nproc={nproc}",
    ]
    if not memory_cgroup:
        args.append(f"--data={data_backstop_mb(limits) * MIB}")
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
    memory_cgroup: bool = False,
    files: bool = True,
    command: Sequence[str] | None = None,
    seccomp_fd: int | None = SECCOMP_FD,
) -> list[str]:
    """The whole argv of one run. With ``files`` the child must hold the script, passwd, group
    and status descriptors at ``SCRIPT_FD``, ``PASSWD_FD``, ``GROUP_FD`` and ``STATUS_FD``;
    with a filter in the config, the filter at ``seccomp_fd``."""
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
    bound = [m.source for m in c.mounts if m.kind == "ro-bind"]
    for directory in interpreter.binds:
        if not any(directory == b or directory.startswith(b + "/") for b in bound):
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
    if c.seccomp is not None and seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    rlimits = rlimit_args(limits, pids_cgroup=pids_cgroup, memory_cgroup=memory_cgroup)
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
        # Under the run's syscall filter too: a runtime it breaks shows up here, at start.
        seccomp_fd = os.memfd_create("seccomp", 0) if config.seccomp is not None else None
        try:
            if seccomp_fd is not None and config.seccomp is not None:
                os.write(seccomp_fd, config.seccomp)
                os.lseek(seccomp_fd, 0, os.SEEK_SET)
            argv = build_command(
                config,
                spec,
                interpreter,
                limits,
                files=False,
                command=[interpreter.path, "--version"],
                seccomp_fd=seccomp_fd,
            )
            done = subprocess.run(  # noqa: S603 - our own fixed command line
                argv,
                capture_output=True,
                text=True,
                timeout=30,
                env=LAUNCHER_ENV,
                check=False,
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
            )
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)
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
        shell = BubblewrapConfig.shell
        mounts = system_mounts(tools=(shell, os.path.realpath(prlimit)))
        if os.path.exists("/etc/ld.so.cache"):
            mounts.append(Mount("ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"))
        try:
            seccomp = compile_filter()
        except SeccompUnavailableError as exc:
            raise SandboxUnavailableError(f"no syscall filter for the sandbox: {exc}") from exc
        interpreters = detect_interpreters(extra_commands=extra_commands)
        bound = [*mounts, *(Mount("ro-bind", d, d) for i in interpreters for d in i.binds)]
        report = audit(bound)  # raises when a bind could expose the host
        log.info(
            "sandbox binds %s: %d entries checked in %.0f ms, no socket, only root may write",
            ", ".join(report.roots),
            report.entries,
            report.elapsed_ms,
        )
        config = BubblewrapConfig(
            bwrap=bwrap,
            prlimit=os.path.realpath(prlimit),
            setpriv=setpriv,
            interpreters=tuple(interpreters),
            mounts=tuple(mounts),
            seccomp=seccomp,
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
        if self.cgroups.memory is None:
            found += ["watch.memory", "rlimit.data"]
        found += ["watch.cpu", "rlimit.cpu", "rlimit.nproc", "rlimit.fsize", "rlimit.nofile"]
        if self.config.seccomp is not None:
            found.append("seccomp")
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
            elif result.outcome == "timed_out":
                # An error for the trace (tail sampling keeps it), typed as the conventions ask.
                span.set_attribute(a.ERROR_TYPE, "timeout")
                span.set_status(Status(StatusCode.ERROR, result.error or "timed out"))
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
                memory_cgroup=cgroup is not None and cgroup.memory is not None,
            )
            watch = SandboxProcess(self.config, limits, cgroup)
            try:
                try:
                    stdin, script = request.stdin.encode(), request.script.encode()
                    files = ChildFiles(
                        stdin=stdin,
                        script=script,
                        passwd=PASSWD,
                        group=GROUP,
                        seccomp=self.config.seccomp,
                    )
                    watch.spawn(argv, files)
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
