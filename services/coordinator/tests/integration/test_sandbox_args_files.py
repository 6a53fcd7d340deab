"""Issue 14 against the real bubblewrap runner: command-line arguments, extra files in the
working directory (and names refused again at the boundary), binary stdin and output, and each
limit a request may set biting: CPU time, processes, output size."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integr8scode_coordinator.sandbox import SandboxLimits, SandboxRequest, SandboxResult, WorkFile
from integr8scode_coordinator.sandbox.bubblewrap import BubblewrapRunner

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")

SLACK_S = 3.0


@pytest.fixture(scope="module")
def runner() -> BubblewrapRunner:
    return BubblewrapRunner.detect()


@pytest.fixture(scope="module")
def rlimits_only() -> BubblewrapRunner:
    return BubblewrapRunner.detect(use_cgroups=False)


async def run(
    runner: BubblewrapRunner,
    script: str,
    language: str = "python",
    *,
    stdin: str | bytes = "",
    args: tuple[str, ...] = (),
    files: tuple[WorkFile, ...] = (),
    limits: SandboxLimits | None = None,
) -> SandboxResult:
    limits = limits or SandboxLimits(timeout_s=10, memory_mb=128)
    request = SandboxRequest(
        f"test-{time.monotonic_ns()}", language, "", script, stdin, limits, args, files
    )
    return await asyncio.wait_for(runner.run(request, asyncio.Event()), limits.timeout_s + SLACK_S)


READ_ARGV_AND_FILE = {
    "python": "import sys\nprint(sys.argv[1:])\nprint(open('data/in.txt').read(), end='')",
    "javascript": (
        "console.log(JSON.stringify(process.argv.slice(2)));"
        "process.stdout.write(require('fs').readFileSync('data/in.txt', 'utf8'));"
    ),
    "bash": 'printf "%s|" "$@"; echo; cat data/in.txt',
}
EXPECTED_ARGV = {
    "python": "['one', 'two words', '--flag']\n",
    "javascript": '["one","two words","--flag"]\n',
    "bash": "one|two words|--flag|\n",
}


@pytest.mark.parametrize("language", ["python", "javascript", "bash"])
async def test_a_script_reads_its_arguments_and_an_extra_file(
    runner: BubblewrapRunner, language: str
) -> None:
    result = await run(
        runner,
        READ_ARGV_AND_FILE[language],
        language,
        args=("one", "two words", "--flag"),
        files=(WorkFile("data/in.txt", b"from the file\n"),),
    )
    assert result.outcome == "completed", result
    assert result.stdout == EXPECTED_ARGV[language] + "from the file\n"


async def test_extra_files_sit_next_to_the_script_and_can_be_binary(
    runner: BubblewrapRunner,
) -> None:
    script = (
        "import os\n"
        "print(sorted(os.listdir('.')), sorted(os.listdir('a/b')))\n"
        "print(list(open('blob', 'rb').read()))\n"
    )
    files = (WorkFile("blob", bytes([0, 255, 10])), WorkFile("a/b/c.txt", b""))
    result = await run(runner, script, files=files)
    assert result.outcome == "completed", result
    assert result.stdout == "['a', 'blob', 'main.py'] ['c.txt']\n[0, 255, 10]\n"


@pytest.mark.parametrize(
    "name",
    ["../escape", "/etc/passwd", "a/../../x", "nul\0byte", "main.py", "main.py/x", "./a", "a//b"],
)
async def test_the_boundary_refuses_a_bad_file_name_again(
    runner: BubblewrapRunner, name: str
) -> None:
    """The API refuses these at its edge; a request that reaches the sandbox anyway (an
    event from elsewhere) is refused here too, and nothing runs."""
    result = await run(runner, "print('ran')", files=(WorkFile(name, b"x"),))
    assert result.outcome == "failed"
    assert (result.error or "").startswith("invalid request: ")
    assert result.stdout == ""


async def test_binary_stdin_and_output_come_through_exactly(runner: BubblewrapRunner) -> None:
    script = (
        "import sys\n"
        "data = sys.stdin.buffer.read()\n"
        "sys.stdout.buffer.write(data + bytes(range(256)))\n"
    )
    result = await run(runner, script, stdin=b"\xff\xfe\x00")
    assert result.outcome == "completed", result
    assert result.stdout_bytes == b"\xff\xfe\x00" + bytes(range(256))
    assert "\ufffd" in result.stdout  # the text reading can't hold them: hence stdout_bytes


async def test_cpu_time_limit_kills_a_busy_loop_before_the_wall_clock(
    runner: BubblewrapRunner,
) -> None:
    limits = SandboxLimits(timeout_s=10, memory_mb=64, cpu_time_s=1)
    result = await run(runner, "while True:\n    pass", limits=limits)
    assert result.outcome == "failed", result
    assert result.error == "CPU time limit of 1s exceeded"
    assert result.wall_time_ms < 5000


FORK_TWENTY = (
    "import os, time\n"
    "for _ in range(20):\n"
    "    if os.fork() == 0:\n"
    "        time.sleep(3)\n"
    "        os._exit(0)\n"
)


@pytest.mark.parametrize("cgroups", [True, False], ids=["host", "rlimits-only"])
async def test_process_limit_is_hit(
    runner: BubblewrapRunner, rlimits_only: BubblewrapRunner, cgroups: bool
) -> None:
    limits = SandboxLimits(timeout_s=10, memory_mb=128, max_processes=4)
    result = await run(runner if cgroups else rlimits_only, FORK_TWENTY, limits=limits)
    assert result.outcome == "failed", result
    assert result.error == "process limit of 4 reached"


async def test_output_is_truncated_at_the_requested_size_and_flagged(
    runner: BubblewrapRunner,
) -> None:
    limits = SandboxLimits(timeout_s=10, memory_mb=64, max_output_bytes=2 * 1024)
    result = await run(runner, "print('z' * 5000)", limits=limits)
    assert result.outcome == "completed", result
    assert (result.stdout, result.stdout_truncated) == ("z" * 2048, True)
    assert result.error == "output truncated at 2 KiB"


async def test_the_run_span_carries_every_limit_and_how_many_args_and_files(
    runner: BubblewrapRunner,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = BubblewrapRunner(runner.config, runner.cgroups, tracer_provider=provider)
    limits = SandboxLimits(5, 64, cpu_time_s=2, max_processes=8, max_output_bytes=4096)
    request = SandboxRequest(
        "exec-span", "python", "", "print(1)", "", limits, ("a", "b"), (WorkFile("f", b""),)
    )
    await traced.run(request, asyncio.Event())
    [span] = [s for s in exporter.get_finished_spans() if s.name == "sandbox.run"]
    attributes = dict(span.attributes or {})
    expected = {
        "sandbox.limits.cpu_time_s": 2,
        "sandbox.limits.max_processes": 8,
        "sandbox.limits.max_output_bytes": 4096,
        "sandbox.args": 2,
        "sandbox.files": 1,
    }
    assert {key: attributes.get(key) for key in expected} == expected
