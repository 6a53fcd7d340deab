"""Hostile scripts through the public API: each ends in a terminal status with a clear error.

Part of the contract `make container-test` runs again: the sandbox must hold inside the
coordinator's container too, with only the privileges docs/containers.md lists."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.client import ApiUser

pytestmark = pytest.mark.contract


async def test_network_access_is_refused(user: ApiUser) -> None:
    script = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 8000), timeout=2)\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)\n"
    )
    result = await user.run(script)
    assert result["status"] == "completed"
    assert result["stdout"].startswith("refused")


async def test_fork_bomb_is_contained(user: ApiUser) -> None:
    result = await user.run(":(){ :|:& };:", "bash", limits={"timeout_s": 5, "memory_mb": 128})
    assert result["status"] in {"failed", "timed_out", "completed"}
    assert result["status"] != "completed" or result["exit_code"] != 0
    assert result["error"] or result["exit_code"] != 0


async def test_memory_bomb_fails_with_a_memory_error(user: ApiUser) -> None:
    result = await user.run(
        "x = bytearray(1024 * 1024 * 1024)\nprint(len(x))",
        limits={"timeout_s": 10, "memory_mb": 128},
    )
    assert result["status"] == "failed", result
    assert "memory" in result["error"].lower()


async def test_disk_fill_is_stopped(user: ApiUser) -> None:
    script = (
        "with open('big', 'wb') as f:\n"
        "    for _ in range(1024):\n"
        "        f.write(b'x' * 1024 * 1024)\n"
        "print('wrote 1 GiB')\n"
    )
    result = await user.run(script, limits={"timeout_s": 10, "memory_mb": 128})
    assert "wrote 1 GiB" not in (result["stdout"] or "")
    assert result["status"] in {"failed", "completed"}
    assert result["error"] or result["exit_code"] != 0


async def test_endless_output_is_truncated(user: ApiUser) -> None:
    result = await user.run(
        "while True:\n    print('x' * 1000)", limits={"timeout_s": 10, "memory_mb": 128}
    )
    assert result["stdout_truncated"] is True
    assert len(result["stdout"].encode()) <= 1024 * 1024
    assert result["status"] in {"completed", "failed"}


async def test_sleep_forever_times_out(user: ApiUser) -> None:
    result = await user.run(
        "import time\nwhile True:\n    time.sleep(1)", limits={"timeout_s": 1, "memory_mb": 64}
    )
    assert result["status"] == "timed_out"
    assert "timeout" in result["error"].lower()


async def test_host_files_are_not_readable(user: ApiUser) -> None:
    script = (
        "import os\n"
        "for path in ['/etc/shadow', '/root', '/work/main', '/home', '/var/lib']:\n"
        "    try:\n"
        "        open(path).read() if not os.path.isdir(path) else os.listdir(path)\n"
        "        print('READ', path)\n"
        "    except OSError:\n"
        "        print('denied', path)\n"
        "env = open('/proc/1/environ').read() + ' '.join(os.environ)\n"
        "print(sorted(w for w in ('SECRET', 'KAFKA', 'MONGO', 'REDIS', 'OTEL') if w in env))\n"
    )
    result = await user.run(script)
    assert result["status"] == "completed"
    assert "READ" not in result["stdout"]
    assert result["stdout"].rstrip().endswith("[]")


async def test_non_zero_exit_keeps_stderr(user: ApiUser) -> None:
    result = await user.run("import sys\nsys.stderr.write('boom')\nsys.exit(3)")
    assert result["status"] == "completed"
    assert result["exit_code"] == 3
    assert result["stderr"] == "boom"


async def test_cancel_a_running_execution(user: ApiUser) -> None:
    response = await user.execute(
        "import time\nprint('started', flush=True)\ntime.sleep(30)",
        limits={"timeout_s": 30, "memory_mb": 64},
    )
    execution_id = response.json()["execution_id"]

    from tests.polling import eventually  # noqa: PLC0415

    async def running() -> bool:
        status: str = (await user.get(execution_id)).json()["status"]
        return status == "running"

    await eventually(running, timeout_s=30, what="execution running")
    cancel = await user.http.post(f"/api/v1/executions/{execution_id}/cancel", headers=user.headers)
    assert cancel.status_code == 202
    result = await user.wait_terminal(execution_id, timeout_s=20)
    assert result["status"] == "cancelled"


# x86-64 numbers of calls the sandbox's syscall filter refuses (the coordinator's sandbox/seccomp;
# its container's profile is the same list); each is called with arguments that would otherwise
# get past the kernel's argument checks.
DENIED = {"keyctl": 250, "bpf": 321, "perf_event_open": 298, "io_uring_setup": 425, "ptrace": 101}

PROBE = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
out = {}
for name, nr in %s.items():
    ctypes.set_errno(0)
    buf = ctypes.create_string_buffer(256)
    rc = libc.syscall(nr, 0, 0, buf, 0, 0)
    out[name] = [rc, os.strerror(ctypes.get_errno())]
rc = libc.unshare(0x10000000)  # CLONE_NEWUSER: a namespace of its own
out["unshare_user"] = [rc, os.strerror(ctypes.get_errno())]
print(json.dumps(out))
"""


async def test_denied_syscalls_fail_with_eperm(user: ApiUser) -> None:
    result = await user.run(PROBE % DENIED)
    assert result["status"] == "completed", result
    calls = json.loads(result["stdout"])
    for name in DENIED:
        assert calls[name] == [-1, "Operation not permitted"], (name, calls[name])
    rc, _ = calls["unshare_user"]
    assert rc == -1  # bubblewrap's --disable-userns: no nested namespaces for the program


# -- limits of the whole run (issue 10) ---------------------------------------------------------
# The coordinator sets cpu_time_s to the request's timeout_s. Memory is resident memory of the
# whole run (the memory cgroup, or the watch's sum without one), not address space.

SPARSE_MMAP = (
    "import mmap\n"
    "m = mmap.mmap(-1, 200 << 20)\n"
    "for i in range(0, {touch_mb} << 20, 4096):\n"
    "    m[i] = 1\n"
    "print('touched {touch_mb} MB')\n"
)


async def test_a_big_mapping_barely_touched_runs_under_the_memory_limit(user: ApiUser) -> None:
    result = await user.run(
        SPARSE_MMAP.format(touch_mb=10), limits={"timeout_s": 10, "memory_mb": 128}
    )
    assert result["status"] == "completed", result
    assert result["stdout"] == "touched 10 MB\n"
    assert result["resource_usage"]["peak_memory_kb"] < 128 * 1024


async def test_touching_more_than_the_memory_limit_fails_with_the_memory_verdict(
    user: ApiUser,
) -> None:
    result = await user.run(
        SPARSE_MMAP.format(touch_mb=200), limits={"timeout_s": 10, "memory_mb": 128}
    )
    assert result["status"] == "failed", result
    assert result["error"] == "memory limit of 128 MB exceeded"
    # A memory cgroup stops it mid-way; the rlimits-only fallback (the coordinator's container)
    # samples every 20 ms, so the run may finish touching (and say so) before it is stopped.
    assert result["stdout"] in ("", "touched 200 MB\n")


async def test_twenty_threads_run_under_the_memory_limit(user: ApiUser) -> None:
    script = (
        "import threading\n"
        "done = []\n"
        "threads = [threading.Thread(target=lambda: done.append(1)) for _ in range(20)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
        "print(len(done), 'threads')\n"
    )
    result = await user.run(script, limits={"timeout_s": 10, "memory_mb": 128})
    assert result["status"] == "completed", result
    assert result["stdout"] == "20 threads\n"


async def test_the_cpu_limit_holds_for_the_whole_run(user: ApiUser) -> None:
    """8 busy processes: each alone stays far under the per-process RLIMIT_CPU of 4 s when the
    run as a whole reaches 4 s of CPU (about 2 s of wall time on 2 free cores). Before the
    whole-run watch, this ran into the wall-clock timeout having used ~8 s of CPU."""
    script = (
        "import os\n"
        "for _ in range(8):\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        "            pass\n"
        "os.wait()\n"
    )
    result = await user.run(script, limits={"timeout_s": 8, "cpu_time_s": 4, "memory_mb": 128})
    assert result["status"] == "failed", result
    assert result["error"] == "CPU time limit of 4s exceeded"
    cpu_ms = result["resource_usage"]["cpu_time_ms"]
    # One poll of the watch (50 ms) on every core, plus the time to kill.
    assert 4000 <= cpu_ms <= 4000 + 2 * 50 * (os.cpu_count() or 1) + 200, cpu_ms


async def test_no_socket_file_is_reachable_inside(user: ApiUser) -> None:
    script = (
        "import os, stat\n"
        "found = []\n"
        "for root, dirs, files in os.walk('/'):\n"
        "    if root == '/':\n"
        "        dirs.remove('proc')\n"
        "    for name in dirs + files:\n"
        "        try:\n"
        "            if stat.S_ISSOCK(os.lstat(os.path.join(root, name)).st_mode):\n"
        "                found.append(os.path.join(root, name))\n"
        "        except OSError:\n"
        "            pass\n"
        "print('SOCKETS', found)\n"
    )
    result = await user.run(script, limits={"timeout_s": 20, "memory_mb": 128})
    assert result["status"] == "completed", result
    assert result["stdout"] == "SOCKETS []\n"
