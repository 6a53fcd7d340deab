"""Every language against the real bubblewrap runner: a hello world, a runtime error and, for
the compiled ones, a compile error, stdin and arguments through both phases, the phase spans,
and compilers given bombs (stopped by the compile limits with a clear error).

Needs ``bwrap`` and the Debian toolchains of ``deploy/local/prereqs.sh`` (a language this host
lacks is skipped, named). No other part of the stack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.language_programs import COMPILE_ERROR, COMPILED, HELLO, LANGUAGES, RUNTIME_ERROR

from integr8scode_coordinator.sandbox import SandboxLimits, SandboxRequest, SandboxResult, WorkFile
from integr8scode_coordinator.sandbox.bubblewrap import BubblewrapRunner

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")

# Reads one line of stdin and prints it with the first argument.
ECHO = {
    "c": (
        "#include <stdio.h>\nint main(int argc, char **argv) {\n"
        "    char line[64]; if (!fgets(line, sizeof line, stdin)) return 1;\n"
        '    printf("%s %s", argv[1], line); return 0;\n}\n'
    ),
    "c++": (
        "#include <iostream>\n#include <string>\nint main(int argc, char **argv) {\n"
        "    std::string line; std::getline(std::cin, line);\n"
        '    std::cout << argv[1] << " " << line << "\\n";\n}\n'
    ),
    "go": (
        'package main\n\nimport (\n\t"bufio"\n\t"fmt"\n\t"os"\n)\n\n'
        "func main() {\n\tline, _ := bufio.NewReader(os.Stdin).ReadString('\\n')\n"
        '\tfmt.Printf("%s %s", os.Args[1], line)\n}\n'
    ),
    "rust": (
        "use std::io::BufRead;\nfn main() {\n"
        "    let mut line = String::new();\n"
        "    std::io::stdin().lock().read_line(&mut line).unwrap();\n"
        '    print!("{} {}", std::env::args().nth(1).unwrap(), line);\n}\n'
    ),
    "java": (
        "import java.io.*;\npublic class Main {\n"
        "    public static void main(String[] args) throws IOException {\n"
        "        String line = new BufferedReader(new InputStreamReader(System.in)).readLine();\n"
        '        System.out.println(args[0] + " " + line);\n    }\n}\n'
    ),
    "typescript": (
        "declare const require: any;\ndeclare const process: any;\n"
        'const line: string = require("fs").readFileSync(0, "utf8");\n'
        'process.stdout.write(process.argv[2] + " " + line);\n'
    ),
}

# Lower than the runner's: a bomb is stopped in seconds.
TIGHT_COMPILE = SandboxLimits(timeout_s=8, memory_mb=256, cpu_time_s=8, max_output_bytes=8192)


@pytest.fixture(scope="module")
def runner() -> BubblewrapRunner:
    return BubblewrapRunner.detect()


def offered(runner: BubblewrapRunner, language: str) -> None:
    if language not in {r.language for r in runner.runtimes()}:
        pytest.skip(f"{language}: no Debian toolchain on this host (deploy/local/prereqs.sh)")


async def run(
    runner: BubblewrapRunner,
    script: str,
    language: str,
    *,
    version: str = "",
    stdin: str = "",
    args: tuple[str, ...] = (),
    files: tuple[WorkFile, ...] = (),
    compile_limits: SandboxLimits | None = None,
    **limits: Any,
) -> SandboxResult:
    offered(runner, language)
    request = SandboxRequest(
        execution_id=f"lang-{time.monotonic_ns()}",
        language=language,
        language_version=version,
        script=script,
        stdin=stdin,
        limits=SandboxLimits(**{"timeout_s": 10.0, "memory_mb": 128, **limits}),
        args=args,
        files=files,
        compile_limits=compile_limits,
    )
    # The compile phase's own timeout (20 s) plus the run's plus spawning and killing.
    return await asyncio.wait_for(runner.run(request, asyncio.Event()), timeout=45)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_hello_world(runner: BubblewrapRunner, language: str) -> None:
    result = await run(runner, HELLO[language], language)
    assert result.outcome == "completed", result
    assert (result.exit_code, result.stdout, result.error) == (0, "hello, world\n", None), result
    if language in COMPILED:
        assert result.compile is not None
        assert result.compile.exit_code == 0, result.compile
        assert result.compile.wall_time_ms > 0
    else:
        assert result.compile is None


async def test_every_lua_version_says_hello(runner: BubblewrapRunner) -> None:
    offered(runner, "lua")
    [lua] = [r for r in runner.runtimes() if r.language == "lua"]
    for version in lua.versions:
        result = await run(runner, "print(_VERSION)", "lua", version=version)
        assert result.stdout == f"Lua {version}\n", result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_runtime_error(runner: BubblewrapRunner, language: str) -> None:
    script, message = RUNTIME_ERROR[language]
    result = await run(runner, script, language)
    assert result.outcome == "completed", result  # a program's own failure: today's semantics
    assert result.exit_code not in (0, None), result
    assert message in result.stderr, result
    if language in COMPILED:
        assert result.compile is not None
        assert result.compile.exit_code == 0


@pytest.mark.parametrize("language", COMPILED)
async def test_compile_error(runner: BubblewrapRunner, language: str) -> None:
    script, message = COMPILE_ERROR[language]
    result = await run(runner, script, language)
    assert result.outcome == "failed", result
    assert result.error == "compilation failed"
    assert result.exit_code is None
    assert result.stdout == ""
    assert result.compile is not None
    assert result.compile.exit_code not in (0, None)
    assert message in result.compile.stderr, result.compile


@pytest.mark.parametrize("language", COMPILED)
async def test_stdin_and_arguments_reach_the_compiled_program(
    runner: BubblewrapRunner, language: str
) -> None:
    result = await run(runner, ECHO[language], language, stdin="from stdin\n", args=("arg1",))
    assert result.outcome == "completed", result
    assert result.stdout == "arg1 from stdin\n", result


async def test_request_files_are_there_in_both_phases(runner: BubblewrapRunner) -> None:
    script = (
        '#include <stdio.h>\n#include "answer.h"\n'
        'int main(void) { FILE *f = fopen("data.txt", "r"); char s[16] = {0};\n'
        '  fgets(s, sizeof s, f); printf("%d %s", ANSWER, s); return 0; }\n'
    )
    files = (WorkFile("answer.h", b"#define ANSWER 42\n"), WorkFile("data.txt", b"data\n"))
    result = await run(runner, script, "c", files=files)
    assert (result.outcome, result.stdout) == ("completed", "42 data\n"), result


async def test_a_file_named_like_the_compiled_program_is_refused(
    runner: BubblewrapRunner,
) -> None:
    result = await run(runner, HELLO["c"], "c", files=(WorkFile("main", b"x"),))
    assert result.outcome == "failed", result
    assert (result.error or "").startswith("invalid request: "), result
    assert "'main'" in (result.error or "")


async def test_each_phase_is_a_span_under_sandbox_run(runner: BubblewrapRunner) -> None:
    offered(runner, "c")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = BubblewrapRunner(runner.config, runner.cgroups, tracer_provider=provider)
    script = "int main(void) { return 3; }\n"
    request = SandboxRequest("exec-c", "c", "", script, "", SandboxLimits(5, 64))
    await traced.run(request, asyncio.Event())
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"sandbox.run", "sandbox.compile", "sandbox.execute"}
    root = spans["sandbox.run"].get_span_context()
    assert root is not None
    for phase in ("sandbox.compile", "sandbox.execute"):
        parent = spans[phase].parent
        assert parent is not None
        assert parent.span_id == root.span_id
    compile_attributes = dict(spans["sandbox.compile"].attributes or {})
    assert compile_attributes["sandbox.exit_code"] == 0
    assert float(str(compile_attributes["sandbox.phase.wall_time_ms"])) > 0
    assert compile_attributes["sandbox.compile.limits.max_processes"] == 256
    execute_attributes = dict(spans["sandbox.execute"].attributes or {})
    assert execute_attributes["sandbox.exit_code"] == 3
    assert (spans["sandbox.compile"].end_time or 0) <= (spans["sandbox.execute"].start_time or 0)


async def test_a_failed_compile_has_no_execute_span(runner: BubblewrapRunner) -> None:
    offered(runner, "c")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = BubblewrapRunner(runner.config, runner.cgroups, tracer_provider=provider)
    request = SandboxRequest("exec-c", "c", "", "int main(", "", SandboxLimits(5, 64))
    await traced.run(request, asyncio.Event())
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["sandbox.compile", "sandbox.run"]


# -- compilers given bombs -------------------------------------------------------------------


async def test_an_include_of_dev_zero_is_stopped_by_the_compile_memory_limit(
    runner: BubblewrapRunner,
) -> None:
    result = await run(runner, '#include "/dev/zero"\n', "c", compile_limits=TIGHT_COMPILE)
    assert result.outcome == "failed", result
    assert result.error in {
        "compilation failed: memory limit of 256 MB exceeded",
        "compilation failed: time limit of 8s exceeded",
    }, result
    # Killed (no exit code), or the driver saw cc1 killed and exited 1: the verdict is the same.
    assert result.compile is not None
    assert result.compile.exit_code in (None, 1)
    assert result.wall_time_ms < 12_000


async def test_a_compile_time_limit_stops_the_compiler(runner: BubblewrapRunner) -> None:
    # Constant evaluation that would take the compiler minutes, in little memory.
    script = (
        "constexpr long spin() { long s = 0;\n"
        "  for (long i = 0; i < 200000; i++) for (long j = 0; j < 200000; j++) s += i ^ j;\n"
        "  return s; }\n"
        "static_assert(spin() != 0);\nint main() {}\n"
    )
    tight = SandboxLimits(timeout_s=1, memory_mb=768, cpu_time_s=30)
    result = await run(runner, script, "c++", compile_limits=tight)
    assert result.outcome == "failed", result
    assert result.error == "compilation failed: time limit of 1s exceeded", result
    assert result.compile is not None
    assert result.compile.wall_time_ms < 4000


async def test_the_compiler_never_reads_the_programs_stdin(runner: BubblewrapRunner) -> None:
    script = '#include "/dev/stdin"\n#include <stdio.h>\nint main(void) { puts("built"); }\n'
    result = await run(runner, script, "c", stdin='#error "stdin reached the compiler"\n')
    assert result.outcome == "completed", result
    assert result.stdout == "built\n"


async def test_an_include_loop_is_a_compile_error(runner: BubblewrapRunner) -> None:
    result = await run(runner, '#include "main.cpp"\n', "c++")
    assert (result.outcome, result.error) == ("failed", "compilation failed"), result
    assert result.compile is not None
    assert "#include nested depth" in result.compile.stderr


async def test_a_template_explosion_is_a_compile_error(runner: BubblewrapRunner) -> None:
    script = (
        "template<int N> struct F { static const int v = F<N - 1>::v + F<N - 2>::v; };\n"
        "template<> struct F<1> { static const int v = 1; };\n"
        "template<> struct F<0> { static const int v = 0; };\n"
        "int main() { return F<100000>::v; }\n"
    )
    result = await run(runner, script, "c++", compile_limits=TIGHT_COMPILE)
    assert result.outcome == "failed", result
    assert (result.error or "").startswith("compilation failed"), result


async def test_a_huge_constant_array_is_stopped(runner: BubblewrapRunner) -> None:
    script = 'static A: [u8; 1 << 30] = [1; 1 << 30];\nfn main() { println!("{}", A[3]); }\n'
    result = await run(runner, script, "rust", compile_limits=TIGHT_COMPILE)
    assert result.outcome == "failed", result
    assert (result.error or "").startswith("compilation failed"), result
    assert result.compile is not None


async def test_a_program_too_big_for_the_file_size_limit_is_refused(
    runner: BubblewrapRunner,
) -> None:
    script = "package main\n\nvar a = [1 << 30]byte{1}\n\nfunc main() { println(a[3]) }\n"
    result = await run(runner, script, "go")
    assert result.outcome == "failed", result
    assert (result.error or "").startswith("compilation failed"), result
    assert result.compile is not None
    assert "file too large" in result.compile.stderr


async def test_a_flood_of_compiler_errors_is_capped(runner: BubblewrapRunner) -> None:
    script = "int main(void) {\n" + "  undefined_name_here;\n" * 20_000 + "}\n"
    result = await run(runner, script, "c", compile_limits=TIGHT_COMPILE)
    assert result.outcome == "failed", result
    assert result.compile is not None
    assert len(result.compile.stderr.encode()) <= TIGHT_COMPILE.max_output_bytes
    assert (result.error or "").startswith("compilation failed"), result


async def test_the_run_phase_keeps_its_own_process_limit(runner: BubblewrapRunner) -> None:
    """The compile phase may have 256 processes (go builds with many threads); the program it
    built still has the run's 64."""
    script = (
        'package main\n\nimport "os/exec"\n\n'
        'func main() {\n\tfor {\n\t\t_ = exec.Command("/usr/bin/sleep", "30").Start()\n\t}\n}\n'
    )
    result = await run(runner, script, "go", timeout_s=8)
    assert result.outcome in {"failed", "timed_out"}, result
    assert "process limit of 64 reached" in (result.error or ""), result


async def test_the_run_phase_keeps_its_own_memory_limit(runner: BubblewrapRunner) -> None:
    script = (
        "#include <stdlib.h>\n#include <string.h>\n#include <stdio.h>\n"
        "int main(void) { size_t n = 1u << 30; char *p = malloc(n);\n"
        "  if (!p) return 1; memset(p, 1, n);\n"
        '  __asm__ volatile("" : : "r"(p) : "memory");  /* keep the pages */\n'
        '  printf("%d\\n", p[n - 1]); }\n'
    )
    result = await run(runner, script, "c")
    assert result.outcome == "failed", result
    assert result.error == "memory limit of 128 MB exceeded", result


# -- the compile phase is a sandbox too ------------------------------------------------------


async def test_the_compile_phase_sees_no_host_files_or_secrets(
    runner: BubblewrapRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTEGR8SCODE_TEST_SECRET", "hunter2-do-not-leak")
    shadow = await run(runner, '#include "/etc/shadow"\nint main(void) { return 0; }\n', "c")
    assert (shadow.outcome, shadow.error) == ("failed", "compilation failed"), shadow
    assert shadow.compile is not None
    assert "No such file or directory" in shadow.compile.stderr
    # The compiler's environment is the sandbox's: rustc's env! reads it at compile time.
    script = 'fn main() { println!("{}", env!("INTEGR8SCODE_TEST_SECRET")); }\n'
    secret = await run(runner, script, "rust")
    assert (secret.outcome, secret.error) == ("failed", "compilation failed"), secret
    assert secret.compile is not None
    assert "not defined" in secret.compile.stderr, secret.compile
    assert "hunter2" not in secret.compile.stderr + secret.compile.stdout
    home = await run(runner, 'fn main() { println!("{:?}", option_env!("HOME")); }\n', "rust")
    assert home.stdout == 'Some("/work")\n', home


async def test_the_compile_phase_has_no_network(runner: BubblewrapRunner) -> None:
    script = 'package main\n\nimport "github.com/example/nothere"\n\nfunc main() { nothere.X() }\n'
    result = await run(runner, script, "go")
    assert (result.outcome, result.error) == ("failed", "compilation failed"), result
    assert result.compile is not None
    assert "cannot find package" in result.compile.stderr, result.compile


async def test_a_cancel_during_the_compile_phase_ends_the_run_cancelled(
    runner: BubblewrapRunner,
) -> None:
    offered(runner, "c++")
    cancel = asyncio.Event()
    slow = (
        "constexpr long spin() { long s = 0;\n"
        "  for (long i = 0; i < 200000; i++) for (long j = 0; j < 200000; j++) s += i ^ j;\n"
        "  return s; }\n"
        "static_assert(spin() != 0);\nint main() {}\n"
    )
    request = SandboxRequest("exec-cancel", "c++", "", slow, "", SandboxLimits(5, 64))
    task = asyncio.create_task(runner.run(request, cancel))
    await asyncio.sleep(0.5)  # the compiler is busy by now; the cancel is what is under test
    started = time.monotonic()
    cancel.set()
    result = await asyncio.wait_for(task, timeout=10)
    assert result.outcome == "cancelled", result
    assert result.compile is not None
    assert time.monotonic() - started < 3


async def test_the_start_check_builds_each_compiler_and_drops_a_broken_one(
    runner: BubblewrapRunner,
) -> None:
    offered(runner, "c")
    checked = BubblewrapRunner(runner.config, runner.cgroups)
    assert await checked.check_compilers() == []
    assert checked.runtimes() == runner.runtimes()
    # A "compiler" that answers but builds nothing (true(1) as gcc) is dropped, named.
    broken = tuple(
        dataclasses.replace(i, path="/usr/bin/true") if i.language == "c" else i
        for i in runner.config.interpreters
    )
    config = dataclasses.replace(runner.config, interpreters=broken)
    checked = BubblewrapRunner(config, runner.cgroups)
    [dropped] = await checked.check_compilers()
    assert dropped.startswith("c ")
    assert "c" not in {r.language for r in checked.runtimes()}
    assert "python" in {r.language for r in checked.runtimes()}
