"""Failures of the platform itself: Kafka down during a POST, a coordinator killed mid-run.

These stop and start parts of the native local stack, so they run last (file name) and are
skipped when the stack is not the native one of this clone.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.client import TERMINAL, ApiUser
from tests.polling import eventually
from tests.stack import local_stack

ROOT = Path(__file__).resolve().parents[2]
PIDS = ROOT / ".local" / "pids"
COMPONENTS = ROOT / "deploy" / "local" / "components"
STACK = local_stack()

pytestmark = pytest.mark.skipif(
    not (PIDS / "kafka.pid").exists(), reason="needs the native stack started from this clone"
)


def _component(name: str, command: str, *args: str) -> None:
    subprocess.run(
        ["bash", str(COMPONENTS / f"{name}.sh"), command, *args],
        check=True,
        capture_output=True,
        timeout=180,
    )


@pytest.fixture
def kafka_stopped() -> Iterator[None]:
    _component("kafka", "stop")
    try:
        yield
    finally:
        _component("kafka", "start")


async def _services_ready() -> None:
    async with httpx.AsyncClient(timeout=5) as http:

        async def ready() -> bool:
            for base in STACK.services.values():
                if (await http.get(f"{base}/health/ready")).status_code != 200:
                    return False
            return True

        await eventually(ready, timeout_s=120, what="every service ready again")


async def test_kafka_down_answers_503_and_leaves_nothing_queued(
    user: ApiUser, kafka_stopped: None
) -> None:
    response = await user.execute("print('never queued')")
    assert response.status_code == 503, response.text
    assert "broker" in response.json()["detail"]
    listed = await user.http.get("/api/v1/executions", headers=user.headers)
    items = listed.json()["items"]
    assert items, "the attempt is recorded"
    assert all(item["status"] != "queued" for item in items)
    assert items[0]["status"] == "failed"
    assert "not queued" in items[0]["error"]


async def test_after_kafka_returns_executions_run_again(user: ApiUser) -> None:
    await _services_ready()
    result = await user.run("print(42)")
    assert result["status"] == "completed"
    assert result["stdout"] == "42\n"


async def test_coordinator_killed_mid_run_ends_in_exactly_one_terminal_status(
    user: ApiUser,
) -> None:
    response = await user.execute(
        "import time\nprint('started', flush=True)\ntime.sleep(20)",
        limits={"timeout_s": 25, "memory_mb": 64},
    )
    execution_id = response.json()["execution_id"]

    async def running() -> bool:
        status: str = (await user.get(execution_id)).json()["status"]
        return status == "running"

    await eventually(running, timeout_s=30, what="execution running")
    pid = int((PIDS / "svc-coordinator.pid").read_text())
    os.killpg(pid, signal.SIGKILL)  # the coordinator and its sandbox, no goodbye
    _component("services", "start", "coordinator")
    restarted = int((PIDS / "svc-coordinator.pid").read_text())
    assert restarted != pid

    result = await user.wait_terminal(execution_id, timeout_s=90)
    assert result["status"] == "failed"
    assert "coordinator" in result["error"]
    terminal = [c["status"] for c in result["status_history"] if c["status"] in TERMINAL]
    assert terminal == ["failed"]
    # And the platform still works with the restarted coordinator.
    after = await user.run("print('still here')")
    assert after["status"] == "completed"
