"""Issue 14 in the saga: the three new limits (defaults, maximums), args, extra files and
base64 inputs refused again when they are bad, handed to the sandbox when they are good, the
verdict and the raw output bytes in the stored result, and sagas stored before all this."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import asdict
from typing import TYPE_CHECKING

import pytest

from integr8scode_coordinator.domain import inputs
from integr8scode_coordinator.domain.saga import ExecutionRequest, RequestFile, SagaStatus
from integr8scode_coordinator.sandbox import WorkFile
from integr8scode_events import ExecutionFailed

if TYPE_CHECKING:
    from conftest import Harness


async def _refused(harness: Harness, request: ExecutionRequest) -> str:
    assert await harness.saga.accept(request) is False
    saga = harness.store.sagas[request.execution_id]
    assert saga.status is SagaStatus.FAILED
    [event] = harness.publisher.events
    assert isinstance(event, ExecutionFailed)
    assert event.payload.error_type == "invalid_request"
    assert harness.runner.requests == []
    return saga.error or ""


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"cpu_time_s": 31.0}, "cpu_time_s 31 is above the maximum 30"),
        ({"max_processes": 129}, "max_processes 129 is above the maximum 128"),
        ({"max_output_kb": 65}, "max_output_kb 65 is above the maximum 64"),
        (
            {"files": (RequestFile("../escape", "x"),)},
            "file name '../escape' leaves the working directory (..)",
        ),
        (
            {"files": (RequestFile("/etc/cron.d/x", "x"),)},
            "file name '/etc/cron.d/x' is an absolute path; give a path relative to the directory",
        ),
        ({"files": (RequestFile("a\0b", "x"),)}, "file name 'a\\x00b' contains a NUL"),
        ({"args": ("ok", "a\0b")}, "an argument contains a NUL character"),
        ({"script": "print(1)\0"}, "script contains a NUL character"),
        ({"stdin": "%%%", "stdin_encoding": "base64"}, "stdin is not valid base64"),
        (
            {"files": (RequestFile("f", "not base64!", "base64"),)},
            "file 'f' is not valid base64",
        ),
    ],
    ids=[
        "cpu",
        "processes",
        "output",
        "dotdot",
        "absolute",
        "nul",
        "arg-nul",
        "script-nul",
        "stdin",
        "file",
    ],
)
async def test_a_request_the_edge_should_have_refused_is_refused_again(
    harness: Harness, change: dict[str, object], error: str
) -> None:
    request = dataclasses.replace(harness.request("ex-bad"), **change)  # type: ignore[arg-type]
    assert (await _refused(harness, request)).startswith(error)


async def test_a_file_named_like_the_script_is_refused_when_the_runtime_names_it(
    harness: Harness,
) -> None:
    runtimes = harness.runner.runtimes()
    harness.runner.runtimes = lambda: [  # type: ignore[method-assign]
        dataclasses.replace(r, script_file="main.py") for r in runtimes
    ]
    request = dataclasses.replace(
        harness.request("ex-clash"), files=(RequestFile("main.py", "print(2)"),)
    )
    assert "clashes with the script's own file" in await _refused(harness, request)


async def test_the_sandbox_gets_the_requested_limits_args_and_decoded_files(
    harness: Harness,
) -> None:
    request = dataclasses.replace(
        harness.request("ex-features", timeout_s=5.0),
        cpu_time_s=2.0,
        max_processes=8,
        max_output_kb=16,
        args=("a", "b c"),
        files=(RequestFile("in.txt", "hi\n"), RequestFile("d/bin", "AP8=", "base64")),
        stdin="AAEC",
        stdin_encoding="base64",
    )
    await harness.saga.run(await harness.reserved(request), asyncio.Event())

    [sandbox] = harness.runner.requests
    assert (sandbox.limits.cpu_time_s, sandbox.limits.max_processes) == (2.0, 8)
    assert sandbox.limits.max_output_bytes == 16 * 1024
    assert sandbox.args == ("a", "b c")
    assert sandbox.files == (WorkFile("in.txt", b"hi\n"), WorkFile("d/bin", b"\x00\xff"))
    assert sandbox.stdin == b"\x00\x01\x02"


async def test_limits_a_request_leaves_out_get_the_coordinators_defaults(
    harness: Harness,
) -> None:
    await harness.saga.run(
        await harness.reserved(harness.request("ex-defaults", timeout_s=4.0)), asyncio.Event()
    )
    [sandbox] = harness.runner.requests
    assert sandbox.limits.cpu_time_s == 4.0  # the wall-clock limit, as before the split
    assert sandbox.limits.max_processes == harness.policy.default_processes
    assert sandbox.limits.max_output_bytes == harness.policy.max_output_bytes


@pytest.mark.parametrize(
    "case",
    [
        ("1 2 \n3\n\n\n", "completed", 0, False, "accepted"),
        ("1 2\r\n3", "completed", 0, False, "accepted"),
        ("1 2\n4\n", "completed", 0, False, "wrong_answer"),
        ("1 2\n3\n", "completed", 1, False, "wrong_answer"),
        ("1 2\n3\n", "failed", None, False, "wrong_answer"),
        ("1 2\n3\n", "completed", 0, True, "wrong_answer"),
        (" 1 2\n3\n", "completed", 0, False, "wrong_answer"),  # leading space counts
    ],
)
async def test_the_verdict_is_stored_with_the_result(
    harness: Harness, case: tuple[str, str, int | None, bool, str]
) -> None:
    stdout, outcome, exit_code, truncated, verdict = case
    harness.runner.default = harness.result(
        outcome,  # type: ignore[arg-type]
        stdout=stdout,
        exit_code=exit_code,
        truncated=truncated,
        error=None if outcome == "completed" else "memory limit of 128 MB exceeded",
    )
    request = dataclasses.replace(harness.request("ex-judge"), expected_stdout="1 2\n3")
    await harness.saga.run(await harness.reserved(request), asyncio.Event())
    assert harness.results.documents["ex-judge"]["verdict"] == verdict


async def test_no_verdict_without_an_expected_output(harness: Harness) -> None:
    await harness.saga.run(await harness.reserved(harness.request("ex-plain")), asyncio.Event())
    assert "verdict" not in harness.results.documents["ex-plain"]


async def test_raw_output_is_kept_only_when_the_text_is_not_exact(harness: Harness) -> None:
    binary = dataclasses.replace(
        harness.result(stdout="\ufffd"), stdout_bytes=b"\xff", stderr_bytes=b""
    )
    harness.runner.results["ex-binary"] = binary
    harness.runner.results["ex-text"] = dataclasses.replace(
        harness.result(stdout="é\n"), stdout_bytes="é\n".encode()
    )
    for execution_id in ("ex-binary", "ex-text"):
        request = harness.request(execution_id)
        await harness.saga.run(await harness.reserved(request), asyncio.Event())
    assert harness.results.documents["ex-binary"]["stdout_raw"] == b"\xff"
    assert "stdout_raw" not in harness.results.documents["ex-text"]
    assert "stderr_raw" not in harness.results.documents["ex-binary"]


def test_a_saga_stored_before_issue_14_reads_with_the_defaults() -> None:
    old = {
        "execution_id": "e",
        "user_id": "u",
        "correlation_id": "c",
        "script": "print(1)",
        "language": "python",
        "language_version": "3.11",
        "stdin": "",
        "timeout_s": 5.0,
        "memory_mb": 128,
    }
    request = ExecutionRequest.from_document(old)
    assert (request.cpu_time_s, request.max_processes, request.max_output_kb) == (None,) * 3
    assert (request.args, request.files, request.expected_stdout) == ((), (), None)


def test_a_request_round_trips_through_its_stored_form() -> None:
    request = ExecutionRequest(
        "e", "u", "c", "s", "python", "3.11", "", 5.0, 128,
        args=("x",),
        files=(RequestFile("a/b", "QQ==", "base64"),),
        expected_stdout="A",
    )  # fmt: skip
    stored = asdict(request)
    stored["args"], stored["files"] = list(stored["args"]), list(stored["files"])  # as BSON
    assert ExecutionRequest.from_document(stored) == request


@pytest.mark.parametrize(
    ("content", "encoding", "data"),
    [("héllo", "utf-8", "héllo".encode()), ("AP8=", "base64", b"\x00\xff"), ("", "base64", b"")],
)
def test_inputs_decode(content: str, encoding: str, data: bytes) -> None:
    assert inputs.decode(content, encoding, "x") == data


@pytest.mark.parametrize(
    ("content", "encoding"), [("AP8", "base64"), ("a b", "base64"), ("", "hex")]
)
def test_bad_inputs_are_refused(content: str, encoding: str) -> None:
    with pytest.raises(inputs.InvalidInputError):
        inputs.decode(content, encoding, "x")


async def test_nul_text_inputs_travel_as_base64_and_nothing_stored_holds_a_nul(
    harness: Harness,
) -> None:
    """FerretDB on PostgreSQL can't store a NUL in a string: stdin and file text with one are
    kept as base64 (same bytes reach the program), output text loses it, ``*_raw`` keeps it."""
    request = dataclasses.replace(
        harness.request("ex-nul"), stdin="a\0b", files=(RequestFile("f", "\0"),)
    )
    harness.runner.default = dataclasses.replace(
        harness.result(stdout="x\0y"), stdout_bytes=b"x\0y"
    )
    await harness.saga.run(await harness.reserved(request), asyncio.Event())

    stored = harness.store.sagas["ex-nul"].request
    assert (stored.stdin, stored.stdin_encoding) == ("YQBi", "base64")
    assert stored.files == (RequestFile("f", "AA==", "base64"),)
    [sandbox] = harness.runner.requests
    assert sandbox.stdin == b"a\0b"
    assert sandbox.files == (WorkFile("f", b"\0"),)
    document = harness.results.documents["ex-nul"]
    assert (document["stdout"], document["stdout_raw"]) == ("x\ufffdy", b"x\0y")
    terminal = harness.publisher.of("ex-nul")[-1]
    assert "\0" not in terminal.to_bytes().decode()
    assert "\\u0000" not in terminal.to_bytes().decode()


def test_a_request_without_nul_is_stored_as_it_is(harness: Harness) -> None:
    request = harness.request("ex-clean")
    assert request.storable() == (request, None)
