"""Every language through the public API: POST → terminal result of a hello world, a runtime
error and (compiled languages) a compile error; ``GET /runtimes`` naming each with its versions
and whether it compiles; the compile and run phases as spans of the execution's trace.

Needs the coordinator of issue 14's languages and the Debian toolchains on the stack's host
(deploy/local/prereqs.sh installs them)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.client import ApiUser
from tests.jaeger import wait_for_trace
from tests.stack import local_stack

STACK = local_stack()

COMPILED = ("c", "c++", "go", "rust", "java", "typescript")
INTERPRETED = ("python", "javascript", "bash", "ruby", "php", "perl", "lua")

HELLO = {
    "python": 'print("hello, world")',
    "javascript": 'console.log("hello, world")',
    "bash": 'echo "hello, world"',
    "ruby": 'puts "hello, world"',
    "php": '<?php echo "hello, world\\n";',
    "perl": 'print "hello, world\\n";',
    "lua": 'print("hello, world")',
    "c": '#include <stdio.h>\nint main(void) { puts("hello, world"); return 0; }\n',
    "c++": '#include <iostream>\nint main() { std::cout << "hello, world" << std::endl; }\n',
    "go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello, world") }\n',
    "rust": 'fn main() { println!("hello, world"); }\n',
    "java": (
        "public class Main {\n"
        '    public static void main(String[] args) { System.out.println("hello, world"); }\n'
        "}\n"
    ),
    "typescript": 'const greeting: string = "hello, world";\nconsole.log(greeting);\n',
}

RUNTIME_ERROR = {
    "python": ("raise ValueError('boom')", "ValueError: boom"),
    "javascript": ("throw new Error('boom')", "Error: boom"),
    "bash": ("echo boom >&2; exit 3", "boom"),
    "ruby": ("raise ArgumentError, 'boom'", "boom (ArgumentError)"),
    "php": ("<?php throw new Exception('boom');", "Exception: boom"),
    "perl": ("die 'boom';", "boom at /work/main.pl"),
    "lua": ("error('boom')", "boom"),
    "c": ('#include <stdio.h>\nint main(void) { fputs("boom\\n", stderr); return 3; }\n', "boom"),
    "c++": ('#include <stdexcept>\nint main() { throw std::runtime_error("boom"); }\n', "boom"),
    "go": ('package main\n\nfunc main() { panic("boom") }\n', "panic: boom"),
    "rust": ('fn main() { panic!("boom"); }\n', "boom"),
    "java": (
        'public class Main { public static void main(String[] a) { throw new RuntimeException("boom"); } }\n',  # noqa: E501
        "java.lang.RuntimeException: boom",
    ),
    "typescript": ("const n: number = 1;\nif (n > 0) throw new Error('boom');\n", "Error: boom"),
}

COMPILE_ERROR = {
    "c": ("int main(void) { return undefined_name; }\n", "undefined_name"),
    "c++": ("int main() { std::string s; }\n", "string"),
    "go": ('package main\n\nfunc main() { var x int = "s" }\n', "cannot use"),
    "rust": ('fn main() { let x: i32 = "s"; }\n', "mismatched types"),
    "java": (
        'public class Main { public static void main(String[] a) { int x = "s"; } }\n',
        "incompatible types",
    ),
    "typescript": ('const x: number = "s";\nconsole.log(x);\n', "TS2322"),
}


async def _runtimes(user: ApiUser) -> dict[str, dict[str, Any]]:
    response = await user.http.get("/api/v1/runtimes", headers=user.headers)
    assert response.status_code == 200, response.text
    return {r["language"]: r for r in response.json()}


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


@pytest.mark.parametrize("language", [*INTERPRETED, *COMPILED])
async def test_hello_world(user: ApiUser, language: str) -> None:
    result = await user.run(HELLO[language], language)
    assert result["status"] == "completed", result
    assert (result["exit_code"], result["stdout"]) == (0, "hello, world\n"), result
    if language in COMPILED:
        assert result["compile"]["exit_code"] == 0, result
        assert result["compile"]["wall_time_ms"] > 0
    else:
        assert "compile" not in result


@pytest.mark.parametrize("language", [*INTERPRETED, *COMPILED])
async def test_runtime_error(user: ApiUser, language: str) -> None:
    script, message = RUNTIME_ERROR[language]
    result = await user.run(script, language)
    assert result["status"] == "completed", result
    assert result["exit_code"] not in (0, None), result
    assert message in result["stderr"], result


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
