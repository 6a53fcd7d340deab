"""``POST /api/v1/execute``: the request body, its rules and what a valid request becomes.

No infrastructure here: ``validate_request`` takes plain values and raises
``RequestRejectedError`` with a message that names the field and the rule (answered 422).

With ``base64`` (the ``?base64=true`` query flag) ``script``, ``stdin``, every file's
``content`` and ``expected_stdout`` are base64: stdin and files may then be any bytes; the
script and the expected output must still be UTF-8 text once decoded.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from integr8scode_api.domain.execution_limits import (
    LimitPolicy,
    Limits,
    RequestRejectedError,
    ResolvedLimits,
)
from integr8scode_api.domain.executions import Runtime

Encoding = Literal["utf-8", "base64"]
MAX_NAME_BYTES = 255


class WorkFileIn(BaseModel):
    """An extra file written in the run's working directory (next to the script) before it
    starts."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="A plain file name or a relative path (`data/input.txt`; directories are "
        "made): no `..`, no absolute path, no NUL or control character, not the script's own "
        "file (`script_file` in `GET /runtimes`).",
        examples=["input.txt"],
    )
    content: str = Field(
        description="The file's content: UTF-8 text, or base64 with `?base64=true`.",
        examples=["3 4\n"],
    )


class ExecuteRequest(BaseModel):
    """Body of ``POST /api/v1/execute``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"script": "print('hello')", "language": "python"},
                {
                    "script": "import sys\na, b = map(int, open(sys.argv[1]).read().split())\n"
                    "print(a + b)",
                    "language": "python",
                    "language_version": "3.11",
                    "args": ["input.txt"],
                    "files": [{"name": "input.txt", "content": "3 4\n"}],
                    "expected_stdout": "7",
                    "limits": {"timeout_s": 2, "max_output_kb": 64},
                },
            ]
        },
    )

    script: str = Field(
        min_length=1, description="The program's source (base64 with `?base64=true`)."
    )
    language: str = Field(min_length=1, max_length=32, examples=["python"])
    language_version: str | None = Field(
        default=None,
        max_length=32,
        description="One of the language's versions; its default when left out.",
        examples=["3.11"],
    )
    stdin: str = Field(
        default="",
        description="Fed to the program's standard input (base64 with `?base64=true`: any bytes).",
    )
    args: list[str] = Field(
        default_factory=list,
        description="Command-line arguments, after the script's path (`sys.argv[1:]`, "
        '`process.argv.slice(2)`, `"$@"`). Count and size are capped (`API_EXECUTION_MAX_ARGS`, '
        "`API_EXECUTION_MAX_ARG_BYTES`); no NUL.",
        examples=[["input.txt", "--verbose"]],
    )
    files: list[WorkFileIn] = Field(
        default_factory=list,
        description="Extra files in the working directory. Count, size per file and total size "
        "are capped (`API_EXECUTION_MAX_FILES`, `…_MAX_FILE_BYTES`, `…_MAX_FILES_TOTAL_BYTES`).",
    )
    expected_stdout: str | None = Field(
        default=None,
        description="When given, the result carries `verdict`: `accepted` if the program ran to "
        "its end, exited 0 and its whole stdout equals this once trailing whitespace is trimmed "
        "from each line and from the end; else `wrong_answer`. Base64 with `?base64=true`.",
        examples=["7"],
    )
    limits: Limits | None = Field(
        default=None,
        description="Each limit optional; one left out gets its default, and none may be "
        "above its maximum (both per language in `GET /runtimes`).",
    )
    compile_limits: Limits | None = Field(
        default=None,
        description="Compiled languages only: lower limits for the compile phase (each at "
        "most the language's `compile_limits` in `GET /runtimes`; one left out keeps it). "
        "The run phase keeps `limits`.",
        examples=[{"timeout_s": 5, "memory_mb": 256}],
    )


class BatchRequest(BaseModel):
    """Body of ``POST /api/v1/executions/batch``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "submissions": [
                        {"script": "print(1)", "language": "python"},
                        {"script": "console.log(2)", "language": "javascript"},
                    ]
                }
            ]
        },
    )

    submissions: list[ExecuteRequest] = Field(
        min_length=1,
        max_length=100,
        description="Each one as the body of `POST /execute`; at most "
        "`API_EXECUTION_MAX_BATCH` (20 by default). Each becomes its own execution with its own "
        "trace, or gets its own error; one bad submission refuses no other.",
    )


@dataclass(frozen=True)
class InputPolicy:
    """Sizes and counts a request is held to (bytes are counted after base64 decoding)."""

    max_script_bytes: int
    max_stdin_bytes: int
    max_args: int = 64
    max_arg_bytes: int = 4096
    max_files: int = 16
    max_file_bytes: int = 65_536
    max_files_total_bytes: int = 262_144
    max_expected_stdout_bytes: int = 65_536


@dataclass(frozen=True)
class ExecutionPolicy:
    """What the platform accepts."""

    inputs: InputPolicy
    limits: LimitPolicy


@dataclass(frozen=True)
class ValidFile:
    name: str
    content: str
    encoding: Encoding


@dataclass(frozen=True)
class ValidatedRequest:
    """A request as it is stored and sent: base64 inputs are kept as base64 (canonical)."""

    script: str
    language: str
    language_version: str
    stdin: str
    limits: ResolvedLimits
    stdin_encoding: Encoding = "utf-8"
    args: tuple[str, ...] = ()
    files: tuple[ValidFile, ...] = ()
    expected_stdout: str | None = None
    compile_limits: dict[str, float] | None = None  # the ones the request gave


def decode_base64(value: str, field: str) -> bytes:
    """Strict base64 (no stray characters, padding required), or a 422 naming the field."""
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestRejectedError(f"{field}: not valid base64 ({exc})") from exc


def _text(value: str, field: str, base64: bool) -> str:
    if not base64:
        return value
    try:
        return decode_base64(value, field).decode()
    except UnicodeDecodeError as exc:
        raise RequestRejectedError(f"{field}: not UTF-8 text once decoded from base64") from exc


def _bytes(value: str, field: str, base64: bool) -> bytes:
    return decode_base64(value, field) if base64 else value.encode()


def _no_nul(text: str, field: str) -> str:
    if "\0" in text:
        raise RequestRejectedError(f"{field}: contains a NUL character")
    return text


def _carried(text: str, data: bytes, b64: bool) -> tuple[str, Encoding]:
    """How an input travels: base64 when it came so, or when its text holds a NUL (the stores
    on the way can't keep one in a string; the program gets the same bytes)."""
    if b64 or "\0" in text:
        return binascii.b2a_base64(data, newline=False).decode(), "base64"
    return text, "utf-8"


def _cap(size: int, maximum: int, field: str, what: str = "bytes") -> None:
    if size > maximum:
        raise RequestRejectedError(f"{field}: {size} {what}; the maximum is {maximum}")


def name_problem(name: str) -> str | None:
    """Why ``name`` can't be a file of the working directory, or None."""
    parts = name.split("/")
    checks = (
        (not name, "is empty"),
        (len(name.encode()) > MAX_NAME_BYTES, f"is longer than {MAX_NAME_BYTES} bytes"),
        (
            any(ord(c) < 0x20 or ord(c) == 0x7F for c in name),
            "contains a NUL or control character",
        ),
        (
            name.startswith("/"),
            "is an absolute path; give a path relative to the working directory",
        ),
        (".." in parts, "leaves the working directory (..)"),
        (any(p in ("", ".") for p in parts), "has an empty or '.' path component"),
    )
    return next((problem for refused, problem in checks if refused), None)


def _check_names(names: list[str], script_file: str | None) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        field = f"files[{index}].name"
        problem = name_problem(name)
        if problem is not None:
            raise RequestRejectedError(f"{field}: {name!r} {problem}")
        if script_file and name.split("/")[0] == script_file:
            raise RequestRejectedError(
                f"{field}: {name!r} clashes with the script's own file {script_file!r}"
            )
        if name in seen:
            raise RequestRejectedError(f"{field}: {name!r} is given twice")
        seen.add(name)
    for name in names:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in seen:
                raise RequestRejectedError(
                    f"files: {'/'.join(parts[:depth])!r} is a file and the directory of {name!r}"
                )


def _files(
    request: ExecuteRequest, policy: InputPolicy, script_file: str | None, b64: bool
) -> tuple[ValidFile, ...]:
    _cap(len(request.files), policy.max_files, "files", "files")
    _check_names([f.name for f in request.files], script_file)
    total = 0
    valid: list[ValidFile] = []
    for index, file in enumerate(request.files):
        field = f"files[{index}].content"
        data = _bytes(file.content, field, b64)
        _cap(len(data), policy.max_file_bytes, field)
        total += len(data)
        valid.append(ValidFile(file.name, *_carried(file.content, data, b64)))
    _cap(total, policy.max_files_total_bytes, "files", "bytes in all")
    return tuple(valid)


def _args(args: list[str], policy: InputPolicy) -> tuple[str, ...]:
    _cap(len(args), policy.max_args, "args", "arguments")
    for index, arg in enumerate(args):
        if "\0" in arg:
            raise RequestRejectedError(f"args[{index}]: contains a NUL character")
        _cap(len(arg.encode()), policy.max_arg_bytes, f"args[{index}]")
    return tuple(args)


def _runtime(request: ExecuteRequest, runtimes: list[Runtime]) -> tuple[Runtime, str]:
    known = {r.language: r for r in runtimes}
    runtime = known.get(request.language)
    if runtime is None:
        offered = ", ".join(sorted(known)) or "none yet (no coordinator has registered)"
        raise RequestRejectedError(
            f"language: unknown language {request.language!r}; available: {offered}"
        )
    version = request.language_version or runtime.default_version
    if version not in runtime.versions:
        raise RequestRejectedError(
            f"language_version: {request.language} {version!r} is not available; "
            f"available: {', '.join(runtime.versions)}"
        )
    return runtime, version


def validate_request(
    request: ExecuteRequest,
    runtimes: list[Runtime],
    policy: ExecutionPolicy,
    *,
    base64: bool = False,
) -> ValidatedRequest:
    """Resolve the version and limits and check every input, or raise
    ``RequestRejectedError`` naming the field and what is wrong."""
    runtime, version = _runtime(request, runtimes)
    inputs = policy.inputs
    script = _no_nul(_text(request.script, "script", base64), "script")
    _cap(len(script.encode()), inputs.max_script_bytes, "script")
    stdin = _bytes(request.stdin, "stdin", base64)
    _cap(len(stdin), inputs.max_stdin_bytes, "stdin")
    stdin_text, stdin_encoding = _carried(request.stdin, stdin, base64)
    expected = request.expected_stdout
    if expected is not None:
        expected = _no_nul(_text(expected, "expected_stdout", base64), "expected_stdout")
        _cap(len(expected.encode()), inputs.max_expected_stdout_bytes, "expected_stdout")
    return ValidatedRequest(
        script=script,
        language=request.language,
        language_version=version,
        stdin=stdin_text,
        stdin_encoding=stdin_encoding,
        limits=policy.limits.resolve(request.language, request.limits),
        args=_args(request.args, inputs),
        files=_files(request, inputs, runtime.script_file, base64),
        expected_stdout=expected,
        compile_limits=_compile_limits(request, runtime),
    )


def _compile_limits(request: ExecuteRequest, runtime: Runtime) -> dict[str, float] | None:
    """The compile limits the request gave, each at most the language's own."""
    if request.compile_limits is None:
        return None
    if not runtime.compiled:
        raise RequestRejectedError(f"compile_limits: {request.language} has no compile phase")
    given: dict[str, float] = request.compile_limits.model_dump(exclude_none=True)
    maximums = runtime.compile_limits or {}
    for name, value in given.items():
        most = maximums.get(name)
        if most is not None and value > most:
            raise RequestRejectedError(
                f"compile_limits.{name}: {value:g} is above the maximum {most:g} "
                f"for {request.language}"
            )
    return given or None
