"""Every language through the public API: POST → terminal result of a hello world, a runtime
error and (compiled languages) a compile error; ``GET /runtimes`` naming each with its versions
and whether it compiles; the compile and run phases as spans of the execution's trace.

The threats of DESIGN §6 run in every language too (the programs: tests/language_programs.py,
shared with the coordinator's integration tests), the compiled ones through their compile
phase. Needs the coordinator of issue 14's languages and the Debian toolchains on the stack's
host (deploy/local/prereqs.sh installs them)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.client import API, ApiUser
from tests.jaeger import wait_for_trace
from tests.language_programs import (
    COMPILE_ERROR,
    COMPILED,
    DISK_FILL,
    FORK_BOMB,
    HELLO,
    HOST_FILES,
    INTERPRETED,
    LANGUAGES,
    MEMORY_BOMB,
    NETWORK,
    OUTPUT_FLOOD,
    PORT,
    RUNTIME_ERROR,
)
from tests.stack import local_stack

STACK = local_stack()

THREAT_LIMITS = {"timeout_s": 10, "memory_mb": 128, "max_processes": 64}


async def _runtimes(user: ApiUser) -> dict[str, dict[str, Any]]:
    response = await user.http.get("/api/v1/runtimes", headers=user.headers)
    assert response.status_code == 200, response.text
    return {r["language"]: r for r in response.json()}


@pytest.mark.contract  # also against the coordinator's image: its toolchains
async def test_runtimes_list_every_language_with_its_versions_and_whether_it_compiles(
    user: ApiUser,
) -> None:
    runtimes = await _runtimes(user)
    assert set(runtimes) >= {*COMPILED, *INTERPRETED}, sorted(runtimes)
    for language in (*COMPILED, *INTERPRETED):
        runtime = runtimes[language]
        assert runtime["compiled"] is (language in COMPILED), runtime
        assert runtime["versions"], runtime
        assert runtime["default_version"] in runtime["versions"]
        # Each short version ("1.19") stands for a detected full one ("1.19.8").
        for version in runtime["versions"]:
            assert any(f.startswith(version) for f in runtime["full_versions"]), runtime
    assert len(runtimes["lua"]["versions"]) >= 2, runtimes["lua"]  # Debian has 5.1 to 5.4


@pytest.mark.contract  # also against the coordinator's image: its toolchains
@pytest.mark.parametrize("language", LANGUAGES)
async def test_hello_world(user: ApiUser, language: str) -> None:
    result = await user.run(HELLO[language], language)
    assert result["status"] == "completed", result
    assert (result["exit_code"], result["stdout"]) == (0, "hello, world\n"), result
    if language in COMPILED:
        assert result["compile"]["exit_code"] == 0, result
        assert result["compile"]["wall_time_ms"] > 0
    else:
        assert "compile" not in result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_runtime_error(user: ApiUser, language: str) -> None:
    script, message = RUNTIME_ERROR[language]
    result = await user.run(script, language)
    assert result["status"] == "completed", result
    assert result["exit_code"] not in (0, None), result
    assert message in result["stderr"], result


@pytest.mark.contract  # also against the coordinator's image: its toolchains
@pytest.mark.parametrize("language", COMPILED)
async def test_compile_error(user: ApiUser, language: str) -> None:
    script, message = COMPILE_ERROR[language]
    result = await user.run(script, language)
    assert result["status"] == "failed", result
    assert result["error"] == "compilation failed", result
    assert result["compile"]["exit_code"] not in (0, None), result
    assert message in result["compile"]["stderr"], result


async def test_a_compiler_given_dev_zero_is_stopped_with_a_clear_error(user: ApiUser) -> None:
    result = await user.run('#include "/dev/zero"\n', "c")
    assert result["status"] == "failed", result
    assert result["error"].startswith("compilation failed: "), result
    assert "limit" in result["error"], result


async def test_a_request_lowers_the_compile_limits_and_no_further(user: ApiUser) -> None:
    runtimes = await _runtimes(user)
    own = runtimes["c"]["compile_limits"]
    assert set(own) >= {"timeout_s", "memory_mb", "cpu_time_s", "max_processes"}, own
    assert runtimes["python"].get("compile_limits") is None
    # A compiler given /dev/zero, held to 96 MB instead of the language's own.
    result = await user.run(
        '#include "/dev/zero"\n', "c", compile_limits={"memory_mb": 96, "timeout_s": 8}
    )
    assert result["status"] == "failed", result
    assert result["error"] in {
        "compilation failed: memory limit of 96 MB exceeded",
        "compilation failed: time limit of 8s exceeded",
    }, result
    # A hello world still builds under lower limits.
    small = await user.run(HELLO["c"], "c", compile_limits={"timeout_s": 10, "memory_mb": 256})
    assert (small["status"], small["stdout"]) == ("completed", "hello, world\n"), small
    above = own["memory_mb"] + 1
    too_much = await user.execute("int main(void){}", "c", compile_limits={"memory_mb": above})
    assert too_much.status_code == 422, too_much.text
    assert too_much.json()["detail"] == (
        f"compile_limits.memory_mb: {above:g} is above the maximum {own['memory_mb']:g} for c"
    )
    interpreted = await user.execute("print(1)", "python", compile_limits={"timeout_s": 1})
    assert interpreted.status_code == 422, interpreted.text
    assert interpreted.json()["detail"] == "compile_limits: python has no compile phase"


async def test_a_compiled_program_keeps_the_run_limits(user: ApiUser) -> None:
    script = "#include <unistd.h>\nint main(void) { for (;;) if (fork() == 0) sleep(60); }\n"
    result = await user.run(script, "c", limits={"timeout_s": 8, "max_processes": 16})
    assert result["status"] in {"failed", "timed_out"}, result
    assert "process limit of 16 reached" in result["error"], result


async def test_compile_and_execute_are_spans_under_sandbox_run(user: ApiUser) -> None:
    result = await user.run(HELLO["go"], "go")
    assert result["status"] == "completed", result
    trace = await wait_for_trace(
        STACK.jaeger_query,
        result["trace_id"],
        until=lambda t: {"sandbox.compile", "sandbox.execute"} <= set(t.names()),
    )
    run = trace.one("sandbox.run")
    compile_span, execute = trace.one("sandbox.compile"), trace.one("sandbox.execute")
    assert trace.parent_of(compile_span).span_id == run.span_id
    assert trace.parent_of(execute).span_id == run.span_id
    assert compile_span.tag("sandbox.exit_code") == 0
    assert execute.tag("sandbox.exit_code") == 0
    assert compile_span.end_us <= execute.start_us


# -- the threats, in every language ----------------------------------------------------------


def _compiled_first(language: str, result: dict[str, Any]) -> None:
    """The attack is the built program's: a compiled language's compile phase succeeded."""
    if language in COMPILED:
        assert result["compile"]["exit_code"] == 0, result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_network_is_unreachable(user: ApiUser, language: str) -> None:
    api_port = API.rsplit(":", 1)[1].split("/")[0]  # the API itself, on the host's loopback
    result = await user.run(NETWORK[language].replace(PORT, api_port), language)
    _compiled_first(language, result)
    assert result["status"] == "completed", result
    assert result["stdout"] == "blocked\n", result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_fork_bomb_is_contained(user: ApiUser, language: str) -> None:
    result = await user.run(FORK_BOMB[language], language, limits=THREAT_LIMITS)
    _compiled_first(language, result)
    assert result["status"] in {"failed", "timed_out"}, result
    assert "process limit of 64 reached" in result["error"], result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_memory_bomb_fails_with_the_memory_verdict(user: ApiUser, language: str) -> None:
    result = await user.run(MEMORY_BOMB[language], language, limits=THREAT_LIMITS)
    _compiled_first(language, result)
    assert result["status"] == "failed", result
    assert result["error"] == "memory limit of 128 MB exceeded", result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_disk_fill_hits_the_file_size_limit(user: ApiUser, language: str) -> None:
    result = await user.run(DISK_FILL[language], language, limits=THREAT_LIMITS)
    _compiled_first(language, result)
    assert "wrote" not in (result["stdout"] or ""), result
    assert result["status"] == "failed", result
    assert result["error"] == "file size limit of 16 MB exceeded", result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_endless_output_is_capped_and_stopped(user: ApiUser, language: str) -> None:
    result = await user.run(OUTPUT_FLOOD[language], language, limits=THREAT_LIMITS)
    _compiled_first(language, result)
    assert result["status"] == "failed", result
    assert result["stdout_truncated"] is True
    assert "output limit exceeded" in result["error"], result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_host_files_and_secrets_are_out_of_reach(user: ApiUser, language: str) -> None:
    result = await user.run(HOST_FILES[language], language)
    _compiled_first(language, result)
    assert result["status"] == "completed", result
    assert result["stdout"] == "denied\nunset\n", result
