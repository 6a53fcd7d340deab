"""Issue 14, the API part, end to end: each limit optional and biting, command-line arguments,
extra files, an online judge's verdict, binary-safe base64 input and output, the runtimes'
defaults and maximums, and a 422 naming the field for every kind of bad input."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.e2e.client import ApiUser
from tests.jaeger import wait_for_trace
from tests.stack import local_stack

STACK = local_stack()
LIMIT_NAMES = ("timeout_s", "memory_mb", "cpu_time_s", "max_processes", "max_output_kb")


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


async def _runtimes(user: ApiUser) -> dict[str, dict[str, Any]]:
    response = await user.http.get("/api/v1/runtimes", headers=user.headers)
    assert response.status_code == 200, response.text
    return {r["language"]: r for r in response.json()}


async def _post_base64(user: ApiUser, body: dict[str, Any]) -> httpx.Response:
    return await user.http.post(
        "/api/v1/execute", params={"base64": "true"}, json=body, headers=user.headers
    )


# -- runtimes and limits ---------------------------------------------------------------------


async def test_runtimes_tell_every_limits_default_and_maximum(user: ApiUser) -> None:
    runtimes = await _runtimes(user)
    assert {"python", "javascript", "bash"} <= set(runtimes)
    for runtime in runtimes.values():
        limits = runtime["limits"]
        assert set(limits["defaults"]) == set(limits["maximums"]) == set(LIMIT_NAMES)
        for name in LIMIT_NAMES:
            assert 0 < limits["defaults"][name] <= limits["maximums"][name], (runtime, name)
    assert runtimes["python"]["script_file"] == "main.py"


async def test_a_request_with_only_a_timeout_runs(user: ApiUser) -> None:
    result = await user.run("print('ok')", limits={"timeout_s": 2})
    assert result["status"] == "completed", result
    assert result["stdout"] == "ok\n"


@pytest.mark.parametrize("name", LIMIT_NAMES)
async def test_a_limit_above_its_maximum_is_422_naming_it_and_the_maximum(
    user: ApiUser, name: str
) -> None:
    maximum = (await _runtimes(user))["python"]["limits"]["maximums"][name]
    response = await user.execute("print(1)", limits={name: maximum * 2})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"limits.{name}: ")
    assert f"above the maximum {maximum:g}" in response.json()["detail"]


async def test_cpu_time_limit_stops_a_busy_loop(user: ApiUser) -> None:
    result = await user.run("while True:\n    pass", limits={"timeout_s": 20, "cpu_time_s": 1})
    assert result["status"] == "failed", result
    assert result["error"] == "CPU time limit of 1s exceeded"
    assert result["resource_usage"]["wall_time_ms"] < 15_000  # well before the wall clock


async def test_process_limit_is_hit(user: ApiUser) -> None:
    script = (
        "import os, time\n"
        "for _ in range(20):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(3)\n"
        "        os._exit(0)\n"
    )
    result = await user.run(script, limits={"max_processes": 4})
    assert result["status"] == "failed", result
    assert result["error"] == "process limit of 4 reached"


async def test_output_is_truncated_at_max_output_kb_and_flagged(user: ApiUser) -> None:
    result = await user.run("print('z' * 5000)", limits={"max_output_kb": 2})
    assert result["status"] == "completed", result
    assert result["stdout"] == "z" * 2048
    assert result["stdout_truncated"] is True
    assert result["error"] == "output truncated at 2 KiB"


async def test_the_sandbox_span_carries_the_requested_limits(user: ApiUser) -> None:
    result = await user.run(
        "print(1)", limits={"cpu_time_s": 3, "max_processes": 16, "max_output_kb": 8}
    )
    trace = await wait_for_trace(
        STACK.jaeger_query, result["trace_id"], until=lambda t: "sandbox.run" in t.names()
    )
    run = trace.one("sandbox.run")
    assert run.tag("sandbox.limits.cpu_time_s") == 3
    assert run.tag("sandbox.limits.max_processes") == 16
    assert run.tag("sandbox.limits.max_output_bytes") == 8 * 1024


# -- args and files --------------------------------------------------------------------------


async def test_a_script_reads_its_arguments_and_an_extra_file(user: ApiUser) -> None:
    script = (
        "import sys\n"
        "a, b = map(int, open(sys.argv[1]).read().split())\n"
        "print(sys.argv[2:], a + b)\n"
    )
    result = await user.run(
        script,
        args=["data/in.txt", "two words", "--flag"],
        files=[{"name": "data/in.txt", "content": "3 4\n"}],
    )
    assert result["status"] == "completed", result
    assert result["stdout"] == "['two words', '--flag'] 7\n"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../escape.txt", "leaves the working directory"),
        ("a/../../escape.txt", "leaves the working directory"),
        ("/etc/passwd", "is an absolute path"),
        ("nul\u0000byte", "contains a NUL"),
        ("main.py", "clashes with the script's own file"),
        ("./a", "has an empty or '.' path component"),
    ],
)
async def test_a_bad_file_name_is_422_naming_the_file(
    user: ApiUser, name: str, reason: str
) -> None:
    response = await user.execute("print(1)", files=[{"name": name, "content": "x"}])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("files[0].name: ")
    assert reason in detail


async def test_too_many_or_too_large_args_and_files_are_422(user: ApiUser) -> None:
    too_many_args = await user.execute("print(1)", args=["a"] * 10_000)
    assert too_many_args.status_code == 422
    assert too_many_args.json()["detail"].startswith("args: 10000 arguments; the maximum is")
    huge_file = await user.execute(
        "print(1)", files=[{"name": "big.txt", "content": "x" * (2 * 1024 * 1024)}]
    )
    assert huge_file.status_code == 422
    assert huge_file.json()["detail"].startswith("files[0].content: 2097152 bytes; the maximum")
    many_files = await user.execute(
        "print(1)", files=[{"name": f"f{i}", "content": ""} for i in range(1000)]
    )
    assert many_files.status_code == 422
    assert many_files.json()["detail"].startswith("files: 1000 files; the maximum is")


# -- expected output -------------------------------------------------------------------------


async def test_expected_stdout_gives_a_verdict(user: ApiUser) -> None:
    accepted = await user.run("print('1 2 ')\nprint(3)\nprint()", expected_stdout="1 2\n3")
    assert accepted["status"] == "completed", accepted
    assert accepted["verdict"] == "accepted"
    wrong = await user.run("print(4)", expected_stdout="3")
    assert wrong["verdict"] == "wrong_answer"
    plain = await user.run("print(3)")
    assert "verdict" not in plain


# -- base64 ----------------------------------------------------------------------------------


async def test_binary_output_comes_back_exact_in_base64(user: ApiUser) -> None:
    script = "import sys\nsys.stdout.buffer.write(bytes(range(256)) + sys.stdin.buffer.read())"
    response = await _post_base64(
        user,
        {"language": "python", "script": b64(script), "stdin": b64(b"\x00\xff\xfe")},
    )
    assert response.status_code == 202, response.text
    execution_id = response.json()["execution_id"]
    result = await user.wait_terminal(execution_id)
    assert result["status"] == "completed", result
    encoded = await user.http.get(
        f"/api/v1/executions/{execution_id}", params={"base64": "true"}, headers=user.headers
    )
    assert encoded.status_code == 200
    assert encoded.json()["encoding"] == "base64"
    assert base64.b64decode(encoded.json()["stdout"]) == bytes(range(256)) + b"\x00\xff\xfe"
    assert encoded.json()["stderr"] == ""


async def test_base64_files_reach_the_program_as_bytes(user: ApiUser) -> None:
    script = "print(list(open('blob', 'rb').read()))"
    response = await _post_base64(
        user,
        {
            "language": "python",
            "script": b64(script),
            "files": [{"name": "blob", "content": b64(bytes([0, 1, 254, 255]))}],
            "expected_stdout": b64("[0, 1, 254, 255]"),
        },
    )
    assert response.status_code == 202, response.text
    result = await user.wait_terminal(response.json()["execution_id"])
    assert result["stdout"] == "[0, 1, 254, 255]\n"
    assert result["verdict"] == "accepted"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"script": "print(1)"}, "script"),
        ({"script": b64("print(1)"), "stdin": "***"}, "stdin"),
        ({"script": b64("print(1)"), "files": [{"name": "f", "content": "a"}]}, "files[0].content"),
        ({"script": b64("print(1)"), "expected_stdout": "a b"}, "expected_stdout"),
    ],
)
async def test_invalid_base64_is_422_naming_the_field(
    user: ApiUser, body: dict[str, Any], field: str
) -> None:
    response = await _post_base64(user, {"language": "python", **body})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}: not valid base64")
