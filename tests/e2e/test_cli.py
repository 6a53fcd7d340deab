"""The ``integr8scode`` CLI as a user runs it: a subprocess (the installed console script)
against the running api, its token in a config dir of the test's own.

Piped output is what every test sees (the subprocess has no terminal): no ANSI anywhere, one
plain line per status. ``test_timeline_*`` needs the api's timeline route (issue 15)."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.client import API, ApiUser
from tests.polling import eventually

CLI = Path(sys.executable).with_name("integr8scode")
ANSI = re.compile(r"\x1b\[")


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    raw_stdout: bytes = b""


@dataclass
class Cli:
    config: Path
    url: str = API

    async def __call__(
        self, *argv: str, stdin: str = "", env: dict[str, str] | None = None, timeout_s: float = 120
    ) -> Outcome:
        process = await asyncio.create_subprocess_exec(
            str(CLI),
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(self.config.parent),
                "XDG_CONFIG_HOME": str(self.config),
                "INTEGR8SCODE_URL": self.url,
                **(env or {}),
            },
        )
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout_s)
        assert process.returncode is not None
        return Outcome(process.returncode, out.decode(errors="replace"), err.decode(), out)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "config")


@pytest.fixture
async def logged_in(cli: Cli, user: ApiUser) -> Cli:
    done = await cli("login", "-u", user.username, "--password-stdin", stdin=user.password + "\n")
    assert done.code == 0, done.stderr
    assert f"as {user.username}" in done.stderr
    stored = cli.config / "integr8scode" / "credentials.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    return cli


def _script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def test_run_prints_the_programs_output_and_mirrors_its_exit_code(
    logged_in: Cli, tmp_path: Path
) -> None:
    script = _script(
        tmp_path,
        "args.py",
        "import sys\nprint('argv', sys.argv[1:])\nprint(input().upper())\n"
        "print('oops', file=sys.stderr)\nsys.exit(3)\n",
    )
    feed = _script(tmp_path, "in.txt", "shout\n")
    ran = await logged_in("run", script, "--arg", "a b", "--arg", "c", "--stdin", feed)
    assert ran.code == 3, ran.stderr
    assert ran.stdout == "argv ['a b', 'c']\nSHOUT\n"  # stdout carries only the program's
    assert "oops\n" in ran.stderr
    lines = ran.stderr.splitlines()
    statuses = [line.split()[1] for line in lines if line.startswith("status: ")]
    assert statuses == ["queued", "running", "completed"]
    assert any(re.fullmatch(r"status +completed +exit code 3", line) for line in lines)
    assert any(line.startswith("resources  wall ") for line in lines)
    assert not ANSI.search(ran.stdout + ran.stderr)


async def test_a_program_that_exits_0_exits_0_and_get_shows_it(
    logged_in: Cli, tmp_path: Path
) -> None:
    ran = await logged_in("run", _script(tmp_path, "ok.sh", "echo fine\n"))
    assert (ran.code, ran.stdout) == (0, "fine\n"), ran.stderr
    execution_id = ran.stderr.splitlines()[0].split()[1]
    got = await logged_in("get", execution_id)
    assert (got.code, got.stdout) == (0, "fine\n")
    assert "completed" in got.stderr
    assert not ANSI.search(got.stdout + got.stderr)


async def test_extra_files_and_the_expected_output_give_a_verdict(
    logged_in: Cli, tmp_path: Path
) -> None:
    script = _script(
        tmp_path,
        "sum.py",
        "import sys\nprint(sum(map(int, open(sys.argv[1]).read().split())))\n",
    )
    data = _script(tmp_path, "numbers.txt", "3 4\n")
    right = _script(tmp_path, "right.txt", "7\n")
    wrong = _script(tmp_path, "wrong.txt", "8\n")
    common = ("run", script, "--file", f"in/n.txt={data}", "--arg", "in/n.txt", "--no-timeline")
    accepted = await logged_in(*common, "--expect", right)
    assert (accepted.code, accepted.stdout) == (0, "7\n"), accepted.stderr
    assert re.search(r"^verdict +accepted$", accepted.stderr, re.MULTILINE), accepted.stderr
    rejected = await logged_in(*common, "--expect", wrong)
    assert rejected.code == 0, rejected.stderr
    assert re.search(r"^verdict +wrong_answer$", rejected.stderr, re.MULTILINE), rejected.stderr


async def test_binary_output_comes_out_byte_for_byte(logged_in: Cli, tmp_path: Path) -> None:
    script = _script(tmp_path, "bin.py", "import sys\nsys.stdout.buffer.write(bytes(range(256)))\n")
    ran = await logged_in("run", script, "--no-timeline")
    assert ran.code == 0, ran.stderr
    assert ran.raw_stdout == bytes(range(256))


async def test_a_timed_out_run_exits_124(logged_in: Cli, tmp_path: Path) -> None:
    script = _script(tmp_path, "slow.py", "import time\ntime.sleep(30)\n")
    ran = await logged_in("run", script, "--timeout", "1")
    assert ran.code == 124, ran.stderr
    assert "timed_out" in ran.stderr


async def test_no_wait_prints_the_id_and_cancel_cancels_it(logged_in: Cli, tmp_path: Path) -> None:
    script = _script(tmp_path, "long.py", "import time\ntime.sleep(60)\n")
    submitted = await logged_in("run", script, "--no-wait", "--timeout", "20")
    assert submitted.code == 0, submitted.stderr
    execution_id = submitted.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", execution_id)
    cancelled = await logged_in("cancel", execution_id)
    assert cancelled.code == 0, cancelled.stderr
    assert cancelled.stderr == f"execution {execution_id}: cancelling\n"

    async def ended() -> bool:
        got = await logged_in("get", execution_id, "--json")
        return '"status": "cancelled"' in got.stdout

    await eventually(ended, timeout_s=60, what="the cancelled status")


async def test_runtimes_lists_the_platforms_languages(logged_in: Cli) -> None:
    listed = await logged_in("runtimes")
    assert listed.code == 0, listed.stderr
    languages = {line.split()[0] for line in listed.stdout.splitlines()[1:]}
    assert {"python", "javascript", "bash"} <= languages
    assert not ANSI.search(listed.stdout)


async def test_a_missing_file_is_a_usage_error(logged_in: Cli, tmp_path: Path) -> None:
    ran = await logged_in("run", str(tmp_path / "missing.py"))
    assert ran.code == 2
    assert ran.stderr == f"integr8scode: error: script {tmp_path}/missing.py: no such file\n"
    odd = await logged_in("run", _script(tmp_path, "notes.txt", "hello"))
    assert odd.code == 2
    assert "can't tell the language of notes.txt" in odd.stderr
    assert odd.stderr.count("\n") == 1


async def test_a_bad_language_is_one_line_naming_the_field(logged_in: Cli, tmp_path: Path) -> None:
    ran = await logged_in("run", _script(tmp_path, "x.py", "print(1)\n"), "--lang", "cobol")
    assert ran.code == 2
    assert ran.stderr.startswith("integr8scode: error: invalid request: ")
    assert "language" in ran.stderr
    assert "cobol" in ran.stderr
    assert ran.stderr.count("\n") == 1
    assert ran.stdout == ""


async def test_a_limit_above_its_maximum_names_the_field(logged_in: Cli, tmp_path: Path) -> None:
    ran = await logged_in("run", _script(tmp_path, "x.py", "print(1)\n"), "--timeout", "100000")
    assert ran.code == 2
    assert ran.stderr.startswith("integr8scode: error: invalid request: limits.timeout_s: ")
    assert ran.stderr.count("\n") == 1


async def test_without_a_token_it_says_run_login(cli: Cli) -> None:
    listed = await cli("runtimes")
    assert listed.code == 3
    assert (
        listed.stderr == f"integr8scode: error: not logged in to {API}: run `integr8scode login`\n"
    )


async def test_a_wrong_password_is_refused_in_one_line(cli: Cli, user: ApiUser) -> None:
    refused = await cli("login", "-u", user.username, "--password-stdin", stdin="wrong-pw\n")
    assert refused.code == 3
    assert refused.stderr.startswith("integr8scode: error: ")
    assert refused.stderr.count("\n") == 1
    assert not (cli.config / "integr8scode" / "credentials.json").exists()


async def test_an_unreachable_api_is_one_line(cli: Cli) -> None:
    cli.url = "http://127.0.0.1:9"  # discard port: nothing listens
    listed = await cli("runtimes", env={"INTEGR8SCODE_TOKEN": "anything"})
    assert listed.code == 4
    assert listed.stderr.startswith(
        "integr8scode: error: cannot reach the API at http://127.0.0.1:9"
    )
    assert listed.stderr.count("\n") == 1


async def test_a_rate_limit_says_when_to_retry(
    logged_in: Cli, http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A rule of one request a minute on a path only this test uses (the most specific rule
    wins, so no other request of the shared api is limited), removed at the end."""
    marker = f"cli-rate-{uuid.uuid4().hex[:12]}"
    rule = {
        "pattern": f"GET /api/v1/executions/{marker}",
        "limit": 1,
        "window_s": 60,
        "algorithm": "sliding_window",
        "scope": "user",
    }
    put = await http.put(f"/api/v1/admin/rate-limits/{marker}", json=rule, headers=admin)
    assert put.status_code == 200, put.text
    try:

        async def limited() -> Outcome | None:
            got = await logged_in("get", marker)
            return got if got.code == 3 and "rate limited" in got.stderr else None

        refused = await eventually(limited, timeout_s=30, interval_s=0.5, what="a 429")
        line = refused.stderr
        match = re.fullmatch(
            r"integr8scode: error: rate limited by the API: retry after (\d+) s \(.+\)\n", line
        )
        assert match, line
        assert 1 <= int(match.group(1)) <= 120  # a sliding window: up to two windows
    finally:
        deleted = await http.delete(f"/api/v1/admin/rate-limits/{marker}", headers=admin)
        assert deleted.status_code == 204, deleted.text


async def test_timeline_shows_bars_and_the_jaeger_link(logged_in: Cli, tmp_path: Path) -> None:
    """Needs the api's ``GET /api/v1/executions/{id}/timeline`` (issue 15)."""
    ran = await logged_in("run", _script(tmp_path, "t.py", "print('t')\n"), "--no-timeline")
    assert ran.code == 0, ran.stderr
    execution_id = ran.stderr.splitlines()[0].split()[1]
    first = await logged_in("timeline", execution_id)
    assert first.code == 0, first.stderr  # 200 at once, complete or not (an api without it: 3)

    async def complete() -> Outcome | None:
        shown = await logged_in("timeline", execution_id)
        return shown if shown.code == 0 and "incomplete" not in shown.stdout else None

    shown = await eventually(complete, timeout_s=60, interval_s=1, what="a complete timeline")
    bars = [line for line in shown.stdout.splitlines() if re.search(r"\|[ #]+\| +[\d.]+ ms$", line)]
    assert len(bars) >= 3, shown.stdout
    assert re.search(r"^total [\d.]+ ms$", shown.stdout, re.MULTILINE)
    assert re.search(r"^jaeger https?://\S+", shown.stdout, re.MULTILINE), shown.stdout
    assert not ANSI.search(shown.stdout)
