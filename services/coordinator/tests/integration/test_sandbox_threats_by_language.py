"""The threats of DESIGN §6 in every language, against the real bubblewrap runner (the host's
cgroups): network, fork bomb, memory, disk, output flood, host files and secrets. One snippet
per (threat, language) in ``THREATS``; compiled languages go through their compile phase
first, so the program that attacks is the one the compiler built. ``test_sandbox_threats.py``
holds the deeper cases (rlimits only, many processes, signals, seccomp) in python, node and
bash; ``test_sandbox_languages.py`` the compilers given bombs.

Needs ``bwrap`` and the Debian toolchains (a language this host lacks is skipped, named).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import Iterator

import pytest
from tests.language_programs import (
    COMPILED,
    DISK_FILL,
    FORK_BOMB,
    HOST_FILES,
    LANGUAGES,
    MEMORY_BOMB,
    NETWORK,
    OUTPUT_FLOOD,
    PORT,
    SECRET,
)

from integr8scode_coordinator.sandbox import SandboxLimits, SandboxRequest, SandboxResult
from integr8scode_coordinator.sandbox.bubblewrap import BubblewrapRunner

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


@pytest.fixture(scope="module")
def runner() -> BubblewrapRunner:
    return BubblewrapRunner.detect()


@pytest.fixture
def host_listener() -> Iterator[tuple[socket.socket, int]]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server, server.getsockname()[1]
    server.close()


async def run(
    runner: BubblewrapRunner, script: str, language: str, timeout_s: float = 10.0
) -> SandboxResult:
    if language not in {r.language for r in runner.runtimes()}:
        pytest.skip(f"{language}: no Debian toolchain on this host (deploy/local/prereqs.sh)")
    request = SandboxRequest(
        execution_id=f"threat-{time.monotonic_ns()}",
        language=language,
        language_version="",
        script=script,
        stdin="",
        limits=SandboxLimits(timeout_s=timeout_s, memory_mb=128),
    )
    result = await asyncio.wait_for(runner.run(request, asyncio.Event()), timeout=45)
    if language in COMPILED:
        # The attack is the built program's: the compile phase must have succeeded.
        assert result.compile is not None, result
        assert result.compile.exit_code == 0, result.compile
    return result


def test_every_language_has_every_threat() -> None:
    for table in (FORK_BOMB, MEMORY_BOMB, DISK_FILL, OUTPUT_FLOOD, HOST_FILES):
        assert set(table) == set(LANGUAGES)
    assert len(LANGUAGES) == 13


@pytest.mark.parametrize("language", LANGUAGES)
async def test_network_is_unreachable(
    runner: BubblewrapRunner, host_listener: tuple[socket.socket, int], language: str
) -> None:
    server, port = host_listener
    result = await run(runner, NETWORK[language].replace(PORT, str(port)), language)
    assert result.outcome == "completed", result
    assert result.stdout == "blocked\n", result
    with pytest.raises(BlockingIOError):
        server.accept()  # nothing ever reached the host's listener


@pytest.mark.parametrize("language", LANGUAGES)
async def test_fork_bomb_is_contained(runner: BubblewrapRunner, language: str) -> None:
    result = await run(runner, FORK_BOMB[language], language, timeout_s=8)
    assert result.outcome in {"failed", "timed_out"}, result
    assert "process limit of 64 reached" in (result.error or ""), result
    survivor = await asyncio.create_subprocess_exec("true")  # the host can still fork
    assert await survivor.wait() == 0


@pytest.mark.parametrize("language", LANGUAGES)
async def test_memory_bomb_fails_with_the_memory_verdict(
    runner: BubblewrapRunner, language: str
) -> None:
    result = await run(runner, MEMORY_BOMB[language], language)
    assert result.outcome == "failed", result
    assert result.error == "memory limit of 128 MB exceeded", result
    assert result.stdout == ""


@pytest.mark.parametrize("language", LANGUAGES)
async def test_disk_fill_hits_the_file_size_limit(runner: BubblewrapRunner, language: str) -> None:
    result = await run(runner, DISK_FILL[language], language)
    assert "wrote" not in result.stdout
    assert result.outcome == "failed", result
    assert result.error == "file size limit of 16 MB exceeded", result


@pytest.mark.parametrize("language", LANGUAGES)
async def test_endless_output_is_capped_and_stopped(
    runner: BubblewrapRunner, language: str
) -> None:
    result = await run(runner, OUTPUT_FLOOD[language], language)
    assert result.stdout_truncated is True
    assert len(result.stdout.encode()) <= 1024 * 1024
    assert result.outcome == "failed", result
    assert "output limit exceeded" in (result.error or ""), result
    assert result.wall_time_ms < 8000  # the flood limit, long before the timeout


@pytest.mark.parametrize("language", LANGUAGES)
async def test_host_files_and_secrets_are_out_of_reach(
    runner: BubblewrapRunner, monkeypatch: pytest.MonkeyPatch, language: str
) -> None:
    monkeypatch.setenv("INTEGR8SCODE_TEST_SECRET", SECRET)
    result = await run(runner, HOST_FILES[language], language)
    assert result.outcome == "completed", result
    assert result.stdout == "denied\nunset\n", result
    assert SECRET not in result.stdout + result.stderr
