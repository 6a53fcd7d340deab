"""The default sandbox runner, ``BubblewrapRunner``: bubblewrap namespaces + rlimits + (where
allowed) cgroups, on this machine.

At start ``BubblewrapRunner.detect`` finds ``bwrap`` and ``prlimit``, compiles the syscall
filter (``seccomp``), finds the interpreters and what they need bound (``detect``), checks the
bind set (``bind_audit``), checks that every interpreter answers inside a sandbox
(``verify_interpreters``) and probes the cgroups the host allows (``cgroups``).

One run: the language and version asked for are matched to an interpreter (``languages``); the
run gets its own cgroup where there are any; its command line is built (``command``: the whole
launcher chain is described there); a ``SandboxProcess`` spawns it, watches it to its end and
reads the result (``process``, ``outcome``); the cgroup goes. ``run`` wraps it in the
``sandbox.run`` span.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from integr8scode_coordinator.sandbox import compile_phase
from integr8scode_coordinator.sandbox.bind_audit import audit
from integr8scode_coordinator.sandbox.cgroups import CgroupHost, RunCgroup
from integr8scode_coordinator.sandbox.command import (
    GROUP,
    PASSWD,
    BubblewrapConfig,
    build_command,
)
from integr8scode_coordinator.sandbox.descriptors import ChildFiles
from integr8scode_coordinator.sandbox.detect import (
    Interpreter,
    Mount,
    detect_interpreters,
    runtimes_of,
    system_mounts,
)
from integr8scode_coordinator.sandbox.languages import LANGUAGES, LanguageSpec, match_version
from integr8scode_coordinator.sandbox.model import (
    MIB,
    PLATFORM_FAILURE,
    CompileResult,
    Runtime,
    SandboxLimits,
    SandboxRequest,
    SandboxResult,
    SandboxUnavailableError,
    WorkFile,
)
from integr8scode_coordinator.sandbox.process import LAUNCHER_ENV, SandboxProcess
from integr8scode_coordinator.sandbox.seccomp import SeccompUnavailableError, compile_filter
from integr8scode_coordinator.sandbox.work_files import args_problem, files_problem
from integr8scode_spans import start_current_span
from integr8scode_telemetry import attributes as a

log = logging.getLogger(__name__)

# The compile phase's own limits (``compile``): compilers need threads (go, javac), memory
# (rustc, javac, tsc) and room for what they build; the run phase never gets these.
DEFAULT_COMPILE_LIMITS = SandboxLimits(
    timeout_s=20,
    memory_mb=768,
    cpu_time_s=30,
    max_output_bytes=64 * 1024,
    max_processes=256,
    max_file_size_mb=64,
    max_open_files=1024,
    tmpfs_size_mb=256,
)


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
                command=[interpreter.path, *spec.version_args],
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
        compile_limits: SandboxLimits = DEFAULT_COMPILE_LIMITS,
    ) -> None:
        self.config = config
        self.cgroups = cgroups
        self.compile_limits = compile_limits
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self._cleanups: set[asyncio.Task[None]] = set()

    @classmethod
    def detect(
        cls,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        extra_commands: Mapping[str, Sequence[str]] | None = None,
        use_cgroups: bool = True,
        compile_limits: SandboxLimits = DEFAULT_COMPILE_LIMITS,
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
        runner = cls(config, cgroups, tracer_provider, compile_limits)
        log.info(
            "sandbox runner %s: runtimes %s; limits enforced by %s",
            cls.name,
            ", ".join(f"{i.language} {i.full_version} ({i.path})" for i in config.interpreters),
            ", ".join(runner.enforced_limits),
        )
        return runner

    async def check_compilers(self) -> list[str]:
        """Build and run each compiled language's ``probe_script`` once, through ``run``: a
        toolchain that answers ``--version`` but can't build (a missing header, linker or
        bind) is dropped here, with a warning, rather than failing users' runs. It also
        brings the compilers into the page cache before the first user's build. Returns
        what was dropped."""
        kept: list[Interpreter] = []
        dropped: list[str] = []
        for interpreter in self.config.interpreters:
            spec = LANGUAGES[interpreter.language]
            if spec.probe_script is None:
                kept.append(interpreter)
                continue
            request = SandboxRequest(
                execution_id=f"check-{spec.language}-{interpreter.version}",
                language=spec.language,
                language_version=interpreter.version,
                script=spec.probe_script,
                stdin="",
                limits=SandboxLimits(timeout_s=20, memory_mb=256),
            )
            result = await self.run(request, asyncio.Event())
            if result.outcome == "completed" and result.stdout == "ok\n":
                kept.append(interpreter)
                continue
            name = f"{spec.language} {interpreter.version}"
            dropped.append(name)
            log.warning(
                "dropping %s: its hello world fails in the sandbox: %s %s",
                name,
                result.error or result.outcome,
                (result.compile.stderr if result.compile else result.stderr)[:300],
            )
        self.config = dataclasses.replace(self.config, interpreters=tuple(kept))
        return dropped

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
        with start_current_span(
            self._tracer,
            "sandbox.run",
            attributes={
                a.SANDBOX_RUNNER: self.name,
                a.SANDBOX_TIMEOUT_S: limits.timeout_s,
                a.SANDBOX_MEMORY_MB: limits.memory_mb,
                "sandbox.limits.cpu_time_s": limits.cpu_time_s or 0.0,
                "sandbox.limits.max_processes": limits.max_processes,
                "sandbox.limits.max_output_bytes": limits.max_output_bytes,
                "sandbox.args": len(request.args),
                "sandbox.files": len(request.files),
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
        # Checked at the API's edge and when the saga was accepted; again here, where a bad
        # name would become a path (defence in depth: this is the security boundary).
        refused = files_problem(request.files, spec.file_name) or args_problem(request.args)
        if refused is not None:
            return _no_run("failed", f"invalid request: {refused}")
        files = request.files
        built: CompileResult | None = None
        if spec.compiled:
            compiled = await self._compile(request, spec, interpreter, cancel)
            if isinstance(compiled, SandboxResult):
                return compiled
            built, outputs = compiled
            files = (*files, *outputs)
            clash = files_problem(files, spec.file_name)
            if clash is not None:
                return _no_run("failed", f"invalid request: {clash} (a compiled file's name)")
        with start_current_span(self._tracer, "sandbox.execute") as span:
            result, _ = await self._phase(
                request,
                spec,
                interpreter,
                limits=request.limits,
                command=None,
                files=files,
                cancel=cancel,
            )
            _phase_attributes(span, result)
        return dataclasses.replace(result, compile=built) if built is not None else result

    async def _compile(
        self,
        request: SandboxRequest,
        spec: LanguageSpec,
        interpreter: Interpreter,
        cancel: asyncio.Event,
    ) -> tuple[CompileResult, tuple[WorkFile, ...]] | SandboxResult:
        """The compile phase: (its result, what it built), or the run's result when the
        program can't run (``compile_phase.failure``)."""
        limits = compile_phase.effective_limits(self.compile_limits, request.compile_limits)
        command = compile_phase.build_argv(
            spec.build_command(interpreter.path, limits),
            diagnostics_on_stdout=spec.diagnostics_on_stdout,
        )
        with start_current_span(
            self._tracer,
            "sandbox.compile",
            attributes={
                "sandbox.compile.limits.timeout_s": limits.timeout_s,
                "sandbox.compile.limits.memory_mb": limits.memory_mb,
                "sandbox.compile.limits.max_processes": limits.max_processes,
            },
        ) as span:
            phase, archive = await self._phase(
                request,
                spec,
                interpreter,
                limits=limits,
                command=command,
                files=request.files,
                cancel=cancel,
            )
            _phase_attributes(span, phase)
            error = compile_phase.failure(phase, limits)
            built = compile_phase.unpack(archive) if error is None else "not built"
            if isinstance(built, str):
                error = error or f"{compile_phase.COMPILATION_FAILED}: {built}"
                span.set_attribute("sandbox.error", error)
                if not error.startswith(compile_phase.COMPILATION_FAILED):
                    span.set_status(Status(StatusCode.ERROR, error))  # the platform's
                return compile_phase.failed_run(phase, error)
            return compile_phase.compile_result(phase), tuple(built)

    async def _phase(
        self,
        request: SandboxRequest,
        spec: LanguageSpec,
        interpreter: Interpreter,
        *,
        limits: SandboxLimits,
        command: list[str] | None,
        files: tuple[WorkFile, ...],
        cancel: asyncio.Event,
    ) -> tuple[SandboxResult, bytes]:
        """One sandbox: the program (``command``: a compile phase's, else the language's run
        command with the request's arguments) under ``limits``; (its result, what a compile
        phase packed)."""
        with self._cgroup(limits) as cgroup:
            argv = build_command(
                self.config,
                spec,
                interpreter,
                limits,
                cgroup_procs=cgroup.procs_files if cgroup else (),
                pids_cgroup=cgroup is not None and cgroup.pids is not None,
                memory_cgroup=cgroup is not None and cgroup.memory is not None,
                work_files=[f.name for f in files],
                executables={f.name for f in files if f.executable},
                args=request.args,
                command=command,
            )
            with SandboxProcess(self.config, limits, cgroup) as watch:
                try:
                    # The program's stdin is the run phase's: a compiler reading /dev/stdin
                    # finds it empty.
                    stdin = request.stdin if command is None else b""
                    child = ChildFiles(
                        stdin=stdin.encode() if isinstance(stdin, str) else stdin,
                        script=request.script.encode(),
                        passwd=PASSWD,
                        group=GROUP,
                        seccomp=self.config.seccomp,
                        extra_files=tuple(f.content for f in files),
                        artifact=command is not None,
                    )
                except OSError as exc:
                    return _no_run("failed", f"{PLATFORM_FAILURE}: {exc}"), b""
                try:
                    try:
                        watch.spawn(argv, child)
                    except OSError as exc:
                        return _no_run("failed", f"{PLATFORM_FAILURE}: {exc}"), b""
                    await watch.wait(cancel)
                    archive = child.read_artifact(limits.max_file_size_mb * MIB)
                finally:
                    child.read_artifact(0)  # closes it whatever happened
            # Before the cgroup goes: its counters are in the result.
            return watch.result(spec), archive

    @contextlib.contextmanager
    def _cgroup(self, limits: SandboxLimits) -> Iterator[RunCgroup | None]:
        """The run's own cgroup (None: rlimits only, where the host allows none or refuses
        one), removed when the run is over."""
        cgroup = None
        if self.cgroups.enforced:
            try:
                # pids.max also covers bwrap's two processes (the monitor and pid 1).
                cgroup = self.cgroups.create(limits.memory_mb, limits.max_processes + 2)
            except OSError as exc:
                log.warning("could not create a cgroup for a run (%s); rlimits only", exc)
        try:
            yield cgroup
        finally:
            if cgroup is not None and not cgroup.remove():
                # The last processes of a killed pid namespace can take a moment to leave.
                task = asyncio.get_running_loop().create_task(_remove_later(cgroup))
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)


def _phase_attributes(span: trace.Span, result: SandboxResult) -> None:
    span.set_attribute("sandbox.phase.wall_time_ms", result.wall_time_ms)
    span.set_attribute("sandbox.phase.cpu_time_ms", result.cpu_time_ms)
    span.set_attribute("sandbox.phase.peak_memory_kb", result.peak_memory_kb)
    span.set_attribute("sandbox.phase.outcome", result.outcome)
    if result.exit_code is not None:
        span.set_attribute(a.SANDBOX_EXIT_CODE, result.exit_code)


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
