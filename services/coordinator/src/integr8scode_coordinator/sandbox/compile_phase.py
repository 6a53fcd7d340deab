"""The compile phase of a compiled language: its command, what it built, and its verdict.

A compiled language (``LanguageSpec.build``) runs in two phases, each a whole sandbox of its
own with the same isolation (namespaces, binds, seccomp, tmpfs) and its own limits, cgroup and
watch: the *compile* phase under the compile limits (``BubblewrapRunner``'s, which a request
may only lower), then the *run* phase under exactly the limits, rlimits and filter an
interpreted language's run gets. The two phases see the same ``/work`` (the script and the
request's files); the compile phase's ``BUILD_DIR`` is packed (``tar``) to a memfd at
``descriptors.ARTIFACT_FD`` and its regular files join the run phase's ``/work`` (programs
mode 0555). So no limit is switched under a live process, the compiler's threads and memory
never count against the program's, and the run phase's semantics are today's.
"""

from __future__ import annotations

import dataclasses
import io
import tarfile

from integr8scode_coordinator.sandbox.descriptors import ARTIFACT_FD
from integr8scode_coordinator.sandbox.languages import BUILD_DIR
from integr8scode_coordinator.sandbox.model import (
    PLATFORM_FAILURE,
    CompileResult,
    SandboxLimits,
    SandboxResult,
    WorkFile,
)
from integr8scode_coordinator.sandbox.work_files import name_problem

COMPILATION_FAILED = "compilation failed"
# Run by the sandbox's pid 1 under the compile rlimits: make the output directory, compile,
# and only when the compiler succeeded pack what it built to the artifact descriptor (by its
# /proc path: the shell redirects only descriptors 0-9).
PACK = (
    f'mkdir -p {BUILD_DIR} || exit 125; "$@"{{redirect}} || exit $?; '
    f"cd {BUILD_DIR} && exec tar -cf /proc/self/fd/{ARTIFACT_FD} ."
)


def build_argv(
    compiler: list[str], *, diagnostics_on_stdout: bool = False, shell: str = "/bin/sh"
) -> list[str]:
    """The compile phase's program: the compiler wrapped so that what it built comes out. A
    compiler that prints its diagnostics on stdout (tsc) has them moved to stderr, where
    every other compiler's are (``compile.stderr``)."""
    pack = PACK.replace("{redirect}", " >&2" if diagnostics_on_stdout else "")
    return [shell, "-c", pack, "sandbox-build", *compiler]


def effective_limits(runner: SandboxLimits, requested: SandboxLimits | None) -> SandboxLimits:
    """The runner's compile limits, each lowered to the request's where it asks for less."""
    if requested is None:
        return runner
    return dataclasses.replace(
        runner,
        timeout_s=min(runner.timeout_s, requested.timeout_s),
        memory_mb=min(runner.memory_mb, requested.memory_mb),
        cpu_time_s=min(
            runner.cpu_time_s or runner.timeout_s, requested.cpu_time_s or requested.timeout_s
        ),
        max_processes=min(runner.max_processes, requested.max_processes),
        max_output_bytes=min(runner.max_output_bytes, requested.max_output_bytes),
    )


def unpack(archive: bytes) -> list[WorkFile] | str:
    """The regular files the compile phase packed (names as ``work_files`` accepts them), or
    why they can't be the run phase's files."""
    files: list[WorkFile] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if member.isdir():
                    continue
                if not member.isreg():
                    return f"the compiler wrote {name!r}, which is not a regular file"
                problem = name_problem(name)
                if problem is not None:
                    return problem
                content = tar.extractfile(member)
                data = content.read() if content is not None else b""
                files.append(WorkFile(name, data, executable=bool(member.mode & 0o100)))
    except (tarfile.TarError, EOFError) as exc:
        return f"the compiled program could not be read: {exc}"
    if not files:
        return "the compiler wrote nothing"
    return files


def compile_result(phase: SandboxResult) -> CompileResult:
    return CompileResult(
        exit_code=phase.exit_code,
        stdout=phase.stdout,
        stderr=phase.stderr,
        wall_time_ms=phase.wall_time_ms,
    )


def failure(phase: SandboxResult, limits: SandboxLimits) -> str | None:
    """Why the compile phase means the program can't run (None: it built). A limit names
    itself (``compilation failed: memory limit of 512 MB exceeded``); a platform error stays
    one."""
    if phase.outcome == "completed" and phase.exit_code == 0:
        return None
    if phase.error and phase.error.startswith(PLATFORM_FAILURE):
        return phase.error
    if phase.outcome == "timed_out":
        return f"{COMPILATION_FAILED}: time limit of {limits.timeout_s:g}s exceeded"
    if phase.outcome == "failed" and phase.error:
        return f"{COMPILATION_FAILED}: {phase.error}"
    return COMPILATION_FAILED


def failed_run(phase: SandboxResult, error: str) -> SandboxResult:
    """The result of a run that ended in its compile phase: ``failed`` (``cancelled`` if it
    was), the compiler's output in ``compile``, the compile phase's measurements."""
    return SandboxResult(
        outcome="cancelled" if phase.outcome == "cancelled" else "failed",
        exit_code=None,
        signal=None,
        stdout="",
        stderr="",
        stdout_truncated=False,
        stderr_truncated=False,
        cpu_time_ms=phase.cpu_time_ms,
        wall_time_ms=phase.wall_time_ms,
        peak_memory_kb=phase.peak_memory_kb,
        error=phase.error if phase.outcome == "cancelled" else error,
        compile=compile_result(phase),
    )
