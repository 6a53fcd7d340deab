"""The CLI end to end against the fake API: exit codes, one-line errors, no ANSI when piped."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import stat
from pathlib import Path

import httpx
import pytest
from client_fakes import EXEC_ID, TOKEN, FakeApi, execution

from integr8scode_client.cli import exit_codes
from integr8scode_client.cli.languages import language_of
from integr8scode_client.cli.main import main
from integr8scode_client.cli.progress import StatusDisplay
from integr8scode_client.cli.render import Style, runtime_table, timeline_lines
from integr8scode_client.models import Execution, Runtime, Timeline

URL = "http://api.test"


class Io:
    def __init__(self, stdin: str = "") -> None:
        self.stdin = io.StringIO(stdin)
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()


def _cli(api: FakeApi, *argv: str, stdin: str = "") -> tuple[int, Io]:
    streams = Io(stdin)
    code = main(
        ["--url", URL, *argv],
        stdin=streams.stdin,
        stdout=streams.stdout,
        stderr=streams.stderr,
        transport=api.transport,
    )
    return code, streams


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("INTEGR8SCODE_TOKEN", raising=False)
    monkeypatch.delenv("INTEGR8SCODE_URL", raising=False)
    return tmp_path / "config"


@pytest.fixture
def logged_in(config_home: Path) -> FakeApi:
    api = FakeApi()
    code, _ = _cli(api, "login", "-u", "alice", "--password-stdin", stdin="pw\n")
    assert code == 0
    return api


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "hello.py"
    path.write_text("print('hello')\n")
    return path


def test_login_stores_the_token_0600_under_the_url(config_home: Path) -> None:
    api = FakeApi()
    code, streams = _cli(api, "login", "-u", "alice", "--password-stdin", stdin="s3cret\n")
    assert code == 0
    assert api.body("POST /api/v1/auth/login") == {"username": "alice", "password": "s3cret"}
    stored = config_home / "integr8scode" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())[URL]["token"] == TOKEN
    assert "logged in" in streams.stderr.getvalue()
    assert "s3cret" not in streams.stderr.getvalue()


def test_run_prints_output_status_and_mirrors_the_exit_code(
    logged_in: FakeApi, script: Path
) -> None:
    logged_in.polls = [execution(stdout="hello\n", stderr="warn\n", exit_code=3)]
    code, streams = _cli(
        logged_in, "run", str(script), "--arg", "a", "--arg", "b", "--timeout", "2"
    )
    assert code == 3
    assert streams.stdout.getvalue() == "hello\n"  # only the program's output on stdout
    err = streams.stderr.getvalue()
    assert "warn\n" in err
    assert "status: queued" in err
    assert "status: running" in err
    assert "status: completed" in err
    assert "exit code 3" in err
    assert "wall 40 ms, cpu 12 ms" in err
    assert "\033[" not in err + streams.stdout.getvalue()  # piped: no ANSI
    body = logged_in.body("POST /api/v1/execute")
    assert body["language"] == "python"
    assert body["args"] == ["a", "b"]
    assert body["limits"] == {"timeout_s": 2.0}
    sent = logged_in.sent("POST /api/v1/execute")[0]
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("status", "code"),
    [("timed_out", exit_codes.TIMED_OUT), ("failed", exit_codes.FAILED), ("cancelled", 130)],
)
def test_run_maps_the_other_endings_to_documented_codes(
    logged_in: FakeApi, script: Path, status: str, code: int
) -> None:
    logged_in.on_sse("")
    logged_in.polls = [execution(status, exit_code=None, error="it ended")]
    assert _cli(logged_in, "run", str(script))[0] == code


def test_run_shows_the_timeline_as_bars_with_the_jaeger_link(
    logged_in: FakeApi, script: Path
) -> None:
    logged_in.on(
        f"GET /api/v1/executions/{EXEC_ID}/timeline",
        200,
        {
            "complete": True,
            "total_ms": 100,
            "phases": [
                {"name": "accepted", "start_ms": 0, "duration_ms": 10},
                {"name": "sandbox", "start_ms": 50, "duration_ms": 50, "critical": True},
            ],
            "jaeger_url": "http://jaeger/trace/abc",
        },
    )
    code, streams = _cli(logged_in, "run", str(script))
    assert code == 0
    err = streams.stderr.getvalue()
    assert "jaeger http://jaeger/trace/abc" in err
    sandbox = next(line for line in err.splitlines() if "sandbox" in line)
    assert sandbox.startswith("*")
    assert "#" * 20 in sandbox


def test_run_no_wait_prints_the_id_only(logged_in: FakeApi, script: Path) -> None:
    code, streams = _cli(logged_in, "run", str(script), "--no-wait")
    assert (code, streams.stdout.getvalue()) == (0, f"{EXEC_ID}\n")
    assert not logged_in.sent(f"GET /api/v1/executions/{EXEC_ID}/events")


def test_stdin_file_is_sent(logged_in: FakeApi, script: Path, tmp_path: Path) -> None:
    feed = tmp_path / "in.txt"
    feed.write_text("3 4\n")
    assert _cli(logged_in, "run", str(script), "--stdin", str(feed))[0] == 0
    assert logged_in.body("POST /api/v1/execute")["stdin"] == "3 4\n"


def test_usage_errors_are_one_line_and_exit_2(logged_in: FakeApi, tmp_path: Path) -> None:
    missing = _cli(logged_in, "run", str(tmp_path / "nope.py"))
    assert missing[0] == 2
    assert (
        missing[1].stderr.getvalue()
        == f"integr8scode: error: script {tmp_path}/nope.py: no such file\n"
    )
    odd = tmp_path / "prog.xyz"
    odd.write_text("x")
    unknown = _cli(logged_in, "run", str(odd))
    assert unknown[0] == 2
    assert "can't tell the language of prog.xyz" in unknown[1].stderr.getvalue()
    assert "--lang" in unknown[1].stderr.getvalue()
    bad_flag = _cli(logged_in, "run")
    assert bad_flag[0] == 2
    assert bad_flag[1].stderr.getvalue().count("\n") == 1
    assert not logged_in.sent("POST /api/v1/execute")


def test_a_bad_language_is_the_apis_422_with_its_field(logged_in: FakeApi, script: Path) -> None:
    logged_in.on(
        "POST /api/v1/execute",
        422,
        {
            "detail": "unknown language 'cobol'",
            "errors": [{"field": "language", "message": "unknown language 'cobol'"}],
        },
    )
    code, streams = _cli(logged_in, "run", str(script), "--lang", "cobol")
    assert code == exit_codes.USAGE
    assert streams.stderr.getvalue() == (
        "integr8scode: error: invalid request: language: unknown language 'cobol'\n"
    )


def test_429_says_when_to_retry(logged_in: FakeApi, script: Path) -> None:
    logged_in.on(
        "POST /api/v1/execute",
        429,
        {"detail": "rate limit 'execute' exceeded"},
        {"Retry-After": "12"},
    )
    code, streams = _cli(logged_in, "run", str(script))
    assert code == exit_codes.REFUSED
    assert "rate limited by the API: retry after 12 s" in streams.stderr.getvalue()


def test_401_and_no_token_both_say_run_login(script: Path) -> None:
    api = FakeApi()
    code, streams = _cli(api, "runtimes")
    assert code == exit_codes.REFUSED
    assert streams.stderr.getvalue() == (
        f"integr8scode: error: not logged in to {URL}: run `integr8scode login`\n"
    )
    _cli(api, "login", "-u", "alice", "--password-stdin", stdin="pw\n")
    api.on("GET /api/v1/runtimes", 401, {"detail": "token expired"})
    code, streams = _cli(api, "runtimes")
    assert code == exit_codes.REFUSED
    assert "token expired: run `integr8scode login`" in streams.stderr.getvalue()


def test_an_unreachable_api_is_one_line_and_exit_4(logged_in: FakeApi) -> None:
    logged_in.fail("GET /api/v1/runtimes", httpx.ConnectError("[Errno 111] Connection refused"))
    code, streams = _cli(logged_in, "runtimes")
    assert code == exit_codes.UNAVAILABLE
    assert streams.stderr.getvalue() == (
        f"integr8scode: error: cannot reach the API at {URL} ([Errno 111] Connection refused)\n"
    )


def test_the_token_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch, script: Path) -> None:
    monkeypatch.setenv("INTEGR8SCODE_TOKEN", "env-token")
    api = FakeApi()
    assert _cli(api, "runtimes")[0] == 0
    assert api.sent("GET /api/v1/runtimes")[0].headers["authorization"] == "Bearer env-token"


def test_get_cancel_runtimes_and_timeline_commands(logged_in: FakeApi) -> None:
    logged_in.on(f"POST /api/v1/executions/{EXEC_ID}/cancel", 202, {"execution_id": EXEC_ID})
    code, streams = _cli(logged_in, "get", EXEC_ID)
    assert code == 0
    assert streams.stdout.getvalue() == "hello\n"
    assert "status     completed  exit code 0" in streams.stderr.getvalue()
    code, streams = _cli(logged_in, "cancel", EXEC_ID)
    assert (code, streams.stderr.getvalue()) == (0, f"execution {EXEC_ID}: cancelling\n")
    code, streams = _cli(logged_in, "runtimes")
    assert "python" in streams.stdout.getvalue()
    code, streams = _cli(logged_in, "timeline", EXEC_ID)
    assert code == exit_codes.REFUSED  # this fake API has no timeline route
    assert "has no GET /api/v1/executions/e-1/timeline" in streams.stderr.getvalue()


def test_get_json_is_the_whole_view(logged_in: FakeApi) -> None:
    code, streams = _cli(logged_in, "get", EXEC_ID, "--json")
    assert code == 0
    assert json.loads(streams.stdout.getvalue())["execution_id"] == EXEC_ID


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("a.py", "python"),
        ("a.js", "javascript"),
        ("a.ts", "typescript"),
        ("a.sh", "bash"),
        ("a.rb", "ruby"),
        ("a.go", "go"),
        ("a.c", "c"),
        ("a.cpp", "c++"),
        ("a.cc", "c++"),
        ("a.java", "java"),
        ("a.rs", "rust"),
        ("a.php", "php"),
        ("a.pl", "perl"),
        ("a.lua", "lua"),
        ("A.PY", "python"),
        ("Makefile", None),
    ],
)
def test_language_from_the_extension(name: str, language: str | None) -> None:
    assert language_of(Path(name)) == language


def test_timeline_bars_place_phases_on_one_axis() -> None:
    timeline = Timeline.model_validate(
        {
            "complete": False,
            "missing": ["notifier"],
            "total_ms": 40,
            "phases": [
                {"name": "a", "start_ms": 0, "duration_ms": 10},
                {"name": "b", "start_ms": 20, "duration_ms": 20},
            ],
        }
    )
    lines = timeline_lines(timeline, Style(ansi=False), width=40)
    assert "(incomplete: missing notifier)" in lines
    bar_a = next(line for line in lines if line.startswith(" a"))
    bar_b = next(line for line in lines if line.startswith(" b"))
    assert bar_a.split("|")[1] == "#" * 10 + " " * 30
    assert bar_b.split("|")[1] == " " * 20 + "#" * 20
    assert "total 40.0 ms" in lines


def test_styles_only_on_a_terminal() -> None:
    assert Style(ansi=True).status("completed").startswith("\033[")
    assert Style(ansi=False).status("completed") == "completed"
    assert Style.for_stream(io.StringIO()).ansi is False


def test_exit_code_of_a_signalled_program() -> None:
    killed = Execution.model_validate(execution(exit_code=-9))
    assert exit_codes.of_execution(killed) == 137


def test_runtimes_show_the_limits_the_api_tells() -> None:
    limits = {
        "defaults": {"timeout_s": 10.0, "memory_mb": 128},
        "maximums": {"timeout_s": 30.0, "memory_mb": 512},
    }
    runtimes = [
        Runtime(language="go", versions=["1.22"], default_version="1.22", compiles=True),
        Runtime(language="python", versions=["3.11"], default_version="3.11", limits=limits),
    ]
    lines = runtime_table(runtimes, Style(ansi=False))
    assert lines[1].split() == ["go", "1.22", "1.22", "(compiled)"]
    assert lines[2].endswith("timeout 10/30 s, memory 128/512 MB")


def test_extra_files_and_the_expected_output_are_sent(
    logged_in: FakeApi, script: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data.txt"
    data.write_text("3 4\n")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\xff\x00")
    expected = tmp_path / "expected.txt"
    expected.write_text("7\n")
    logged_in.polls = [execution(verdict="wrong_answer")]
    code, streams = _cli(
        logged_in,
        "run",
        str(script),
        "--file",
        str(data),
        "--file",
        f"in/raw.bin={blob}",
        "--expect",
        str(expected),
    )
    assert code == 0
    sent = logged_in.sent("POST /api/v1/execute")[0]
    assert sent.url.params["base64"] == "true"  # one file is not text: all of it as base64
    body = json.loads(sent.content)
    assert [f["name"] for f in body["files"]] == ["data.txt", "in/raw.bin"]
    assert base64.b64decode(body["files"][1]["content"]) == b"\xff\x00"
    assert base64.b64decode(body["expected_stdout"]) == b"7\n"
    assert "verdict    wrong_answer" in streams.stderr.getvalue()


class _Terminal(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.spun = asyncio.Event()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if "running" in text:
            self.spun.set()  # the spinner line shows the status the work reported
        return super().write(text)


async def test_on_a_terminal_a_spinner_turns_and_leaves_the_trail() -> None:
    stream = _Terminal()
    display = StatusDisplay(stream, live=True, style=Style(ansi=True))
    gate = asyncio.Event()

    async def work() -> str:
        display.update("queued")
        display.update("running")
        await gate.wait()
        display.update("completed")
        return "done"

    task = asyncio.create_task(display.follow(work()))

    await asyncio.wait_for(stream.spun.wait(), timeout=5)
    gate.set()
    assert await task == "done"
    text = stream.getvalue()
    assert "\r\033[K" in text  # the line rewritten in place
    last = text.rsplit("\r\033[K", 1)[1]
    assert [w for w in re.sub(r"\033\[[0-9;]*m", "", last).split() if w.isalpha()][:3] == [
        "queued",
        "running",
        "completed",
    ]
    assert "status:" not in text  # no plain lines on a terminal


def test_the_timeline_apis_shape_renders_critical_phases_notifications_and_retries() -> None:
    """The shape of services/api's Timeline: phases with span ids, the critical path as span
    segments, notifications with dead-letter retries, links.jaeger."""
    timeline = Timeline.model_validate(
        {
            "execution_id": EXEC_ID,
            "trace_id": "t1",
            "complete": True,
            "missing": [],
            "reason": None,
            "total_ms": 200.0,
            "result_ms": 120.0,
            "phases": [
                {"name": "accepted", "start_ms": 0, "duration_ms": 5, "span_ids": ["a"]},
                {"name": "sandbox", "start_ms": 20, "duration_ms": 80, "span_ids": ["s", "x"]},
            ],
            "notifications": [
                {
                    "notification_id": "n",
                    "channel": "webhook",
                    "status": "delivered",
                    "attempts": 2,
                    "start_ms": 130,
                    "duration_ms": 60,
                    "deliveries": [],
                    "retries": [
                        {"retry": 1, "span_id": "r", "published_ms": 170, "backoff_ms": 30}
                    ],
                }
            ],
            "critical_path": [{"span_id": "x", "service": "coordinator", "name": "run"}],
            "spans": [{"span_id": "a", "name": "POST /api/v1/execute"}],
            "links": {"jaeger": "http://127.0.0.1:16686/trace/t1"},
        }
    )
    lines = timeline_lines(timeline, Style(ansi=False))
    assert [p.name for p in timeline.phases] == ["accepted", "sandbox"]
    assert next(line for line in lines if "accepted" in line).startswith(" ")
    assert next(line for line in lines if "sandbox" in line).startswith("*")
    assert any("notify webhook (delivered, 2 attempts)" in line for line in lines)
    assert any("dlq retry 1 after 30 ms" in line for line in lines)
    assert "total 200.0 ms" in lines
    assert "result delivered at 120.0 ms" in lines
    assert lines[-1] == "jaeger http://127.0.0.1:16686/trace/t1"


def test_get_shows_the_page_link(logged_in: FakeApi) -> None:
    logged_in.polls = [execution(links={"page": f"/executions/{EXEC_ID}", "timeline": "/t"})]
    code, streams = _cli(logged_in, "get", EXEC_ID)
    assert code == 0
    assert f"page       {URL}/executions/{EXEC_ID}" in streams.stderr.getvalue()


def test_a_timeline_backend_down_is_a_note_not_a_failure(logged_in: FakeApi, script: Path) -> None:
    logged_in.on(
        f"GET /api/v1/executions/{EXEC_ID}/timeline",
        503,
        {"detail": "the trace backend does not answer"},
    )
    code, streams = _cli(logged_in, "run", str(script))
    assert code == 0
    assert "timeline unavailable: the trace backend does not answer" in streams.stderr.getvalue()


def test_run_waits_for_a_complete_timeline_and_says_so(logged_in: FakeApi, script: Path) -> None:
    answers = [
        {"complete": False, "missing": ["status_delivered"], "phases": []},
        {"complete": True, "total_ms": 10, "phases": [{"name": "sandbox", "duration_ms": 10}]},
    ]

    def timeline(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers.pop(0) if len(answers) > 1 else answers[0])

    logged_in.routes[f"GET /api/v1/executions/{EXEC_ID}/timeline"] = timeline
    code, streams = _cli(logged_in, "run", str(script), "--timeline-wait", "10")
    assert code == 0
    err = streams.stderr.getvalue()
    assert "timeline: waiting up to 10 s for the whole trace" in err
    assert "incomplete" not in err
    assert any(
        line.startswith("*sandbox") or line.startswith(" sandbox") for line in err.splitlines()
    )
    assert len(logged_in.sent(f"GET /api/v1/executions/{EXEC_ID}/timeline")) == 2
