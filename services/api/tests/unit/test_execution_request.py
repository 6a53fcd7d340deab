"""The execute request's rules (issue 14): each limit optional and held to its maximum (per
language), args and extra files with their caps and name rules, base64 inputs, and the view's
verdict and base64 output. Plain domain functions, no HTTP."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from integr8scode_api.domain.execution_limits import (
    LanguageLimits,
    LimitOverrides,
    LimitPolicy,
    Limits,
    LimitTable,
    RequestRejectedError,
    ResolvedLimits,
)
from integr8scode_api.domain.execution_request import (
    ExecuteRequest,
    ExecutionPolicy,
    InputPolicy,
    ValidatedRequest,
    validate_request,
)
from integr8scode_api.domain.executions import (
    CompileView,
    ExecutionResult,
    ExecutionStatus,
    Runtime,
    StoredExecution,
    view_of,
)

DEFAULTS = ResolvedLimits(
    timeout_s=5, memory_mb=128, cpu_time_s=5, max_processes=32, max_output_kb=64
)
MAXIMUMS = ResolvedLimits(
    timeout_s=10, memory_mb=256, cpu_time_s=10, max_processes=64, max_output_kb=1024
)
LIMITS = LimitPolicy(
    base=LimitTable(defaults=DEFAULTS, maximums=MAXIMUMS),
    languages={
        "javascript": LanguageLimits(
            defaults=LimitOverrides(memory_mb=200), maximums=LimitOverrides(memory_mb=512)
        )
    },
)
POLICY = ExecutionPolicy(
    inputs=InputPolicy(
        max_script_bytes=1000,
        max_stdin_bytes=8,
        max_args=3,
        max_arg_bytes=10,
        max_files=2,
        max_file_bytes=100,
        max_files_total_bytes=150,
        max_expected_stdout_bytes=20,
    ),
    limits=LIMITS,
)
RUNTIMES = [
    Runtime(language="python", versions=["3.11"], default_version="3.11", script_file="main.py"),
    Runtime(language="javascript", versions=["20"], default_version="20"),
    Runtime(
        language="c",
        versions=["12"],
        default_version="12",
        script_file="main.c",
        compiled=True,
        compile_limits={"timeout_s": 20, "memory_mb": 768, "cpu_time_s": 30, "max_processes": 256},
    ),
]


def valid(base64_flag: bool = False, **body: Any) -> ValidatedRequest:
    request = ExecuteRequest.model_validate({"script": "print(1)", "language": "python", **body})
    return validate_request(request, RUNTIMES, POLICY, base64=base64_flag)


def refused(base64_flag: bool = False, **body: Any) -> str:
    with pytest.raises(RequestRejectedError) as caught:
        valid(base64_flag, **body)
    return str(caught.value)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


# -- limits ------------------------------------------------------------------------------------


def test_only_a_timeout_is_enough_and_every_other_limit_gets_its_default() -> None:
    limits = valid(limits={"timeout_s": 2}).limits
    assert limits == DEFAULTS.model_copy(update={"timeout_s": 2.0})


def test_no_limits_at_all_are_the_defaults() -> None:
    assert valid().limits == DEFAULTS


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"timeout_s": 10.5}, "limits.timeout_s: 10.5 is above the maximum 10 for python"),
        ({"memory_mb": 257}, "limits.memory_mb: 257 is above the maximum 256 for python"),
        ({"cpu_time_s": 11}, "limits.cpu_time_s: 11 is above the maximum 10 for python"),
        ({"max_processes": 65}, "limits.max_processes: 65 is above the maximum 64 for python"),
        ({"max_output_kb": 2048}, "limits.max_output_kb: 2048 is above the maximum 1024"),
    ],
)
def test_each_limit_above_its_maximum_is_refused_by_name(
    limits: dict[str, float], message: str
) -> None:
    assert refused(limits=limits).startswith(message)


def test_every_limit_at_its_maximum_is_accepted() -> None:
    assert valid(limits=MAXIMUMS.model_dump()).limits == MAXIMUMS


def test_a_language_has_its_own_defaults_and_maximums() -> None:
    js = valid(language="javascript").limits
    assert (js.memory_mb, js.timeout_s) == (200, 5)
    assert valid(language="javascript", limits={"memory_mb": 512}).limits.memory_mb == 512
    assert "maximum 512 for javascript" in refused(language="javascript", limits={"memory_mb": 513})
    assert LIMITS.table("javascript").maximums.memory_mb == 512
    assert LIMITS.table("python") == LIMITS.base


@pytest.mark.parametrize("limits", [{"timeout_s": 0}, {"max_processes": 0}, {"nope": 1}])
def test_a_limit_that_is_not_positive_or_unknown_is_a_schema_error(limits: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"Extra inputs|greater than"):
        Limits.model_validate(limits)


def test_a_default_above_its_maximum_is_a_configuration_problem() -> None:
    bad = LimitPolicy(
        base=LimitTable(defaults=DEFAULTS, maximums=MAXIMUMS),
        languages={"go": LanguageLimits(defaults=LimitOverrides(timeout_s=20))},
    )
    assert bad.problems() == ["go: default timeout_s 20 is above its maximum 10"]


# -- args and files ----------------------------------------------------------------------------


def test_args_and_files_pass_through() -> None:
    request = valid(args=["a", "b c"], files=[{"name": "d/in.txt", "content": "hi"}])
    assert request.args == ("a", "b c")
    [file] = request.files
    assert (file.name, file.content, file.encoding) == ("d/in.txt", "hi", "utf-8")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"args": ["1", "2", "3", "4"]}, "args: 4 arguments; the maximum is 3"),
        ({"args": ["x" * 11]}, "args[0]: 11 bytes; the maximum is 10"),
        ({"args": ["a\0b"]}, "args[0]: contains a NUL character"),
        (
            {"files": [{"name": f"f{i}", "content": ""} for i in range(3)]},
            "files: 3 files; the maximum is 2",
        ),
        (
            {"files": [{"name": "big", "content": "x" * 101}]},
            "files[0].content: 101 bytes; the maximum is 100",
        ),
        (
            {"files": [{"name": "a", "content": "x" * 80}, {"name": "b", "content": "x" * 80}]},
            "files: 160 bytes in all; the maximum is 150",
        ),
        (
            {"files": [{"name": "../etc/passwd", "content": ""}]},
            "files[0].name: '../etc/passwd' leaves the working directory (..)",
        ),
        (
            {"files": [{"name": "a/../../b", "content": ""}]},
            "files[0].name: 'a/../../b' leaves the working directory (..)",
        ),
        (
            {"files": [{"name": "/etc/x", "content": ""}]},
            "files[0].name: '/etc/x' is an absolute path",
        ),
        (
            {"files": [{"name": "a\0b", "content": ""}]},
            "files[0].name: 'a\\x00b' contains a NUL or control character",
        ),
        ({"files": [{"name": "", "content": ""}]}, "files[0].name: '' is empty"),
        ({"files": [{"name": "./a", "content": ""}]}, "files[0].name: './a' has an empty or '.'"),
        (
            {"files": [{"name": "main.py", "content": ""}]},
            "files[0].name: 'main.py' clashes with the script's own file 'main.py'",
        ),
        (
            {"files": [{"name": "a", "content": ""}, {"name": "a", "content": ""}]},
            "files[1].name: 'a' is given twice",
        ),
        (
            {"files": [{"name": "a", "content": ""}, {"name": "a/b", "content": ""}]},
            "files: 'a' is a file and the directory of 'a/b'",
        ),
        ({"stdin": "123456789"}, "stdin: 9 bytes; the maximum is 8"),
        ({"script": "print(1)\0"}, "script: contains a NUL character"),
        ({"expected_stdout": "a\0"}, "expected_stdout: contains a NUL character"),
        ({"expected_stdout": "x" * 21}, "expected_stdout: 21 bytes; the maximum is 20"),
    ],
)
def test_bad_args_files_and_sizes_are_refused_naming_the_field(
    body: dict[str, Any], message: str
) -> None:
    assert refused(**body).startswith(message)


# -- base64 ------------------------------------------------------------------------------------


def test_base64_inputs_are_decoded_checked_and_sent_as_base64() -> None:
    request = valid(
        True,
        script=b64("print(2)"),
        stdin=b64(b"\x00\xff"),
        files=[{"name": "bin", "content": b64(bytes(range(100)))}],
        expected_stdout=b64("2\n"),
    )
    assert request.script == "print(2)"
    assert (request.stdin, request.stdin_encoding) == ("AP8=", "base64")
    assert base64.b64decode(request.files[0].content) == bytes(range(100))
    assert request.files[0].encoding == "base64"
    assert request.expected_stdout == "2\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"script": "print(1)"}, "script: not valid base64"),
        ({"script": b64("x"), "stdin": "%%"}, "stdin: not valid base64"),
        (
            {"script": b64("x"), "files": [{"name": "f", "content": "abc"}]},
            "files[0].content: not valid base64",
        ),
        ({"script": b64("x"), "expected_stdout": "a b"}, "expected_stdout: not valid base64"),
        ({"script": b64(b"\xff\xfe")}, "script: not UTF-8 text once decoded from base64"),
        ({"script": b64("x"), "stdin": b64(b"123456789")}, "stdin: 9 bytes; the maximum is 8"),
    ],
)
def test_bad_base64_is_refused_naming_the_field(body: dict[str, Any], message: str) -> None:
    assert refused(True, **body).startswith(message)


# -- the view ----------------------------------------------------------------------------------


def _stored() -> StoredExecution:
    return StoredExecution(
        execution_id="e",
        user_id="u",
        status=ExecutionStatus.COMPLETED,
        language="python",
        language_version="3.11",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_the_verdict_is_absent_unless_there_is_one() -> None:
    plain = view_of(_stored(), ExecutionResult(stdout="1\n"), None).model_dump(mode="json")
    assert "verdict" not in plain
    judged = view_of(_stored(), ExecutionResult(stdout="1\n", verdict="accepted"), None)
    assert judged.model_dump(mode="json")["verdict"] == "accepted"


def test_the_compile_phase_shows_only_for_a_compiled_language() -> None:
    plain = view_of(_stored(), ExecutionResult(stdout="1\n"), None).model_dump(mode="json")
    assert "compile" not in plain
    compiled = CompileView(exit_code=1, stderr="main.c:1: error", wall_time_ms=80.0)
    failed = ExecutionResult(error="compilation failed", compile=compiled)
    view = view_of(_stored(), failed, None).model_dump(mode="json")
    assert view["compile"] == {
        "exit_code": 1,
        "stdout": "",
        "stderr": "main.c:1: error",
        "wall_time_ms": 80.0,
    }
    assert view["error"] == "compilation failed"


def test_base64_output_is_the_exact_bytes() -> None:
    raw = bytes(range(256))
    result = ExecutionResult(stdout=raw.decode(errors="replace"), stdout_raw=raw, stderr="é")
    view = view_of(_stored(), result, None, as_base64=True)
    assert view.encoding == "base64"
    assert base64.b64decode(view.stdout or "") == raw
    assert base64.b64decode(view.stderr or "") == "é".encode()
    text = view_of(_stored(), result, None)
    assert (text.encoding, text.stderr) == ("utf-8", "é")


def test_text_stdin_and_files_with_a_nul_travel_as_base64() -> None:
    """The stores on the way (FerretDB on PostgreSQL) can't hold a NUL in a string."""
    request = valid(
        stdin="a\0b", files=[{"name": "f", "content": "\0"}, {"name": "g", "content": "ok"}]
    )
    assert (request.stdin, request.stdin_encoding) == ("YQBi", "base64")
    assert [(f.content, f.encoding) for f in request.files] == [("AA==", "base64"), ("ok", "utf-8")]


def test_a_completed_run_shows_the_runs_own_note_and_a_failure_its_reason() -> None:
    note = ExecutionResult(stdout="z", stdout_truncated=True, error="output truncated at 2 KiB")
    assert view_of(_stored(), note, None).error == "output truncated at 2 KiB"
    failed = replace(_stored(), error="memory limit of 64 MB exceeded")
    assert view_of(failed, note, None).error == "memory limit of 64 MB exceeded"
    assert view_of(_stored(), ExecutionResult(stdout="1\n"), None).error is None


# -- compile limits ------------------------------------------------------------------------------


def test_compile_limits_may_lower_a_compiled_languages_own() -> None:
    request = valid(language="c", compile_limits={"memory_mb": 256, "timeout_s": 5})
    assert request.compile_limits == {"memory_mb": 256, "timeout_s": 5}
    assert valid(language="c").compile_limits is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"language": "c", "compile_limits": {"memory_mb": 1024}},
            "compile_limits.memory_mb: 1024 is above the maximum 768 for c",
        ),
        (
            {"language": "c", "compile_limits": {"timeout_s": 21}},
            "compile_limits.timeout_s: 21 is above the maximum 20 for c",
        ),
        (
            {"language": "python", "compile_limits": {"timeout_s": 1}},
            "compile_limits: python has no compile phase",
        ),
    ],
)
def test_compile_limits_above_the_languages_or_without_a_compile_phase_are_refused(
    body: dict[str, Any], message: str
) -> None:
    assert refused(**body) == message
