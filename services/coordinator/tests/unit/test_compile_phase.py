"""The compile phase's pieces without bwrap: what it built, its verdict, the stored result and
the terminal event of a compiled language (issue 14)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import tarfile
from typing import TYPE_CHECKING

import pytest

from integr8scode_coordinator import orchestrator
from integr8scode_coordinator.domain import outcomes
from integr8scode_coordinator.domain.saga import ExecutionRequest
from integr8scode_coordinator.sandbox import CompileResult, SandboxLimits
from integr8scode_coordinator.sandbox.compile_phase import (
    COMPILATION_FAILED,
    build_argv,
    effective_limits,
    failed_run,
    failure,
    unpack,
)
from integr8scode_coordinator.sandbox.descriptors import ARTIFACT_FD, PARENT_FD_BASE
from integr8scode_coordinator.sandbox.model import SandboxResult
from integr8scode_events import ExecutionCompleted, ExecutionFailed, ProducerInfo

if TYPE_CHECKING:
    from conftest import Harness

PRODUCER = ProducerInfo(service="execution-coordinator", version="test")
RUNNER_LIMITS = SandboxLimits(timeout_s=20, memory_mb=768, cpu_time_s=30, max_processes=256)


def _tar(*members: tuple[str, bytes, int]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _phase(
    outcome: str = "completed", exit_code: int | None = 0, **fields: object
) -> SandboxResult:
    base = SandboxResult(
        outcome=outcome,  # type: ignore[arg-type]
        exit_code=exit_code,
        signal=None,
        stdout="",
        stderr="main.c:1: error: expected ';'\n",
        stdout_truncated=False,
        stderr_truncated=False,
        cpu_time_ms=40.0,
        wall_time_ms=120.0,
        peak_memory_kb=9000,
        error=None,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def test_what_the_compiler_built_becomes_the_runs_files() -> None:
    files = unpack(_tar(("./main", b"\x7fELF", 0o755), ("./Main$1.class", b"\xca\xfe", 0o644)))
    assert not isinstance(files, str)
    assert [(f.name, f.content, f.executable) for f in files] == [
        ("main", b"\x7fELF", True),
        ("Main$1.class", b"\xca\xfe", False),
    ]


@pytest.mark.parametrize(
    ("archive", "problem"),
    [
        (_tar(("../escape", b"x", 0o644)), "leaves the working directory"),
        (_tar(), "the compiler wrote nothing"),
        (b"not a tar archive" * 100, "could not be read"),
    ],
)
def test_what_cannot_be_the_runs_files_is_refused(archive: bytes, problem: str) -> None:
    refused = unpack(archive)
    assert isinstance(refused, str)
    assert problem in refused


def test_a_link_from_the_compiler_is_refused() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        link = tarfile.TarInfo("./main")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link)
    refused = unpack(buffer.getvalue())
    assert isinstance(refused, str)
    assert "not a regular file" in refused


def test_the_wrapper_packs_only_after_the_compiler_succeeded() -> None:
    compiler = ["/usr/bin/gcc", "-o", "/out/main", "/work/main.c"]
    argv = build_argv(compiler)
    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[4:] == compiler
    assert '"$@" || exit $?' in argv[2]
    assert f"/proc/self/fd/{ARTIFACT_FD}" in argv[2]
    assert ARTIFACT_FD < PARENT_FD_BASE
    assert '"$@" >&2 ||' in build_argv(["tsc"], diagnostics_on_stdout=True)[2]


def test_a_request_may_only_lower_the_compile_limits() -> None:
    lower = SandboxLimits(timeout_s=5, memory_mb=2048, cpu_time_s=60, max_processes=8)
    limits = effective_limits(RUNNER_LIMITS, lower)
    assert (limits.timeout_s, limits.memory_mb, limits.cpu_time_s, limits.max_processes) == (
        5,
        768,
        30,
        8,
    )
    assert effective_limits(RUNNER_LIMITS, None) is RUNNER_LIMITS


def test_a_requests_compile_limits_lower_only_the_ones_it_gives() -> None:
    """``execution.requested``'s ``compile_limits`` as the orchestrator hands them to the
    runner: a limit left out is no limit, so the runner keeps its own."""
    request = ExecutionRequest(
        execution_id="e",
        user_id="u",
        correlation_id="e",
        script="int main(){}",
        language="c",
        language_version="12",
        stdin="",
        timeout_s=5,
        memory_mb=128,
        compile_limits={"memory_mb": 256, "max_output_kb": 4},
    )
    asked = orchestrator._compile_limits(request)
    limits = effective_limits(RUNNER_LIMITS, asked)
    assert (limits.memory_mb, limits.max_output_bytes) == (256, 4096)
    assert (limits.timeout_s, limits.cpu_time_s, limits.max_processes) == (
        RUNNER_LIMITS.timeout_s,
        RUNNER_LIMITS.cpu_time_s,
        RUNNER_LIMITS.max_processes,
    )
    no_ask = dataclasses.replace(request, compile_limits=None)
    assert orchestrator._compile_limits(no_ask) is None


@pytest.mark.parametrize(
    ("phase", "error"),
    [
        (_phase(), None),
        (_phase(exit_code=1), COMPILATION_FAILED),
        (_phase("timed_out", None), "compilation failed: time limit of 20s exceeded"),
        (
            _phase("failed", None, error="memory limit of 768 MB exceeded"),
            "compilation failed: memory limit of 768 MB exceeded",
        ),
        (
            _phase("failed", None, error="sandbox failed to start: bwrap: oops"),
            "sandbox failed to start: bwrap: oops",
        ),
    ],
)
def test_the_compile_phases_verdict(phase: SandboxResult, error: str | None) -> None:
    assert failure(phase, RUNNER_LIMITS) == error


def test_a_failed_compile_is_a_failed_run_with_the_compilers_message() -> None:
    result = failed_run(_phase(exit_code=1), COMPILATION_FAILED)
    assert (result.outcome, result.error, result.exit_code, result.stdout) == (
        "failed",
        COMPILATION_FAILED,
        None,
        "",
    )
    assert result.compile == CompileResult(1, "", "main.c:1: error: expected ';'\n", 120.0)
    cancelled = failed_run(_phase("cancelled", None, error="cancelled while running"), "x")
    assert (cancelled.outcome, cancelled.error) == ("cancelled", "cancelled while running")


def test_the_terminal_events_carry_the_compile_summary(harness: Harness) -> None:
    request = harness.request("ex-c")
    compiled = CompileResult(0, "", "warning: unused\n", 150.0)
    ran = dataclasses.replace(harness.result(exit_code=0, stdout="hi\n"), compile=compiled)
    event = outcomes.terminal_event(request, ran, PRODUCER, cancelled_by="user")
    assert isinstance(event, ExecutionCompleted)
    assert event.payload.compile is not None
    assert (event.payload.compile.exit_code, event.payload.compile.wall_time_ms) == (0, 150.0)
    assert event.payload.compile.stderr_preview == "warning: unused\n"

    refused = failed_run(_phase(exit_code=1), COMPILATION_FAILED)
    failed = outcomes.terminal_event(request, refused, PRODUCER, cancelled_by="user")
    assert isinstance(failed, ExecutionFailed)
    assert (failed.payload.error, failed.payload.error_type) == (
        COMPILATION_FAILED,
        "compilation_error",
    )
    assert failed.payload.compile is not None
    assert failed.payload.compile.stderr_preview.startswith("main.c:1: error")

    interpreted = outcomes.terminal_event(request, harness.result(), PRODUCER, "user")
    assert isinstance(interpreted, ExecutionCompleted)
    assert interpreted.payload.compile is None


async def test_the_stored_result_holds_the_compile_phase(harness: Harness) -> None:
    compiled = CompileResult(1, "", "main.c:1: error\0 here\n", 90.0)
    harness.runner.default = dataclasses.replace(
        harness.result("failed", error=COMPILATION_FAILED, exit_code=None), compile=compiled
    )
    await harness.saga.run(await harness.reserved(harness.request("ex-cc")), asyncio.Event())
    stored = harness.results.documents["ex-cc"]["compile"]
    # No NUL in what FerretDB stores.
    assert stored == {
        "exit_code": 1,
        "stdout": "",
        "stderr": "main.c:1: error\ufffd here\n",
        "wall_time_ms": 90.0,
    }
    harness.runner.default = harness.result()  # an interpreted language's run
    await harness.saga.run(await harness.reserved(harness.request("ex-py")), asyncio.Event())
    assert "compile" not in harness.results.documents["ex-py"]
