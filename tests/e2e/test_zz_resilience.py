"""Failures of the platform itself: Kafka down during a POST, a coordinator killed mid-run.

These stop and start parts of the native local stack, so they run last (file name) and are
skipped when the stack is not the native one of this clone.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from tests.e2e.client import TERMINAL, ApiUser
from tests.e2e.stack_control import (
    component,
    native_stack_here,
    pid_of,
    services_ready,
)
from tests.polling import eventually

pytestmark = pytest.mark.skipif(
    not native_stack_here(), reason="needs the native stack started from this clone"
)


@pytest.fixture
def kafka_stopped() -> Iterator[None]:
    component("kafka", "stop")
    try:
        yield
    finally:
        component("kafka", "start")


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


async def test_a_frozen_broker_never_contradicts_what_clients_were_told(user: ApiUser) -> None:
    """Kafka frozen (SIGSTOP) during a POST with an Idempotency-Key. A retry meanwhile is told
    to wait (409), never 202 for something that may fail unseen. The first request ends one of
    two ways, each consistent: the producer took the message but got no acknowledgement → 202
    (it is in the submission outbox), and after the broker resumes it runs once and is never
    seen failed; or the producer could not even take it → 503, it ends failed "not queued"
    (nobody was told otherwise) and the key is free for a new execution."""
    await services_ready()  # after the test before restarted Kafka
    warm = await user.run("print('warm')")  # the api's producer has a live connection
    assert warm["status"] == "completed"
    key = f"frozen-{os.getpid()}-{id(user)}"
    body = {"script": "print('delivered late')", "language": "python"}
    headers = {**user.headers, "Idempotency-Key": key}
    kafka = pid_of("kafka")
    os.killpg(kafka, signal.SIGSTOP)
    try:
        first = asyncio.create_task(user.http.post("/api/v1/execute", json=body, headers=headers))

        async def stored() -> str | None:
            items = (await user.http.get("/api/v1/executions", headers=user.headers)).json()
            newest = items["items"][0] if items["items"] else None
            return str(newest["execution_id"]) if newest and newest["status"] == "queued" else None

        execution_id = await eventually(stored, timeout_s=10, what="the first request stored")
        retry = await user.http.post("/api/v1/execute", json=body, headers=headers)
        assert retry.status_code == 409, retry.text
        assert retry.headers["Retry-After"]
        other = await user.http.post(
            "/api/v1/execute", json={**body, "script": "print('other')"}, headers=headers
        )
        assert other.status_code == 422, other.text
        assert "Idempotency-Key" in other.json()["detail"]
        answered = await first
    finally:
        os.killpg(kafka, signal.SIGCONT)

    if answered.status_code == 202:  # taken, not confirmed: the outbox delivers it
        assert answered.json()["execution_id"] == execution_id
        result = await user.wait_terminal(execution_id, timeout_s=120)
        assert result["status"] == "completed", result
        assert result["stdout"] == "delivered late\n"
        assert result["error"] is None
        history = [c["status"] for c in result["status_history"]]
        assert history == ["queued", "running", "completed"]
        again = await user.http.post("/api/v1/execute", json=body, headers=headers)
        assert again.status_code == 202, again.text
        assert again.json()["execution_id"] == execution_id
        return
    assert answered.status_code == 503, answered.text  # never taken: not accepted, and ended
    refused = (await user.get(execution_id)).json()
    assert refused["status"] == "failed"
    assert "not queued" in refused["error"]
    await services_ready()
    again = await user.http.post("/api/v1/execute", json=body, headers=headers)
    assert again.status_code == 202, again.text
    assert again.json()["execution_id"] != execution_id
    result = await user.wait_terminal(again.json()["execution_id"], timeout_s=120)
    assert result["status"] == "completed", result
    # The refused one stays as it was told: failed, never run after all.
    assert (await user.get(execution_id)).json()["status"] == "failed"


async def test_after_kafka_returns_executions_run_again(user: ApiUser) -> None:
    await services_ready()
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
    pid = pid_of("svc-coordinator")
    os.killpg(pid, signal.SIGKILL)  # the coordinator and its sandbox, no goodbye
    component("services", "start", "coordinator")
    restarted = pid_of("svc-coordinator")
    assert restarted != pid

    result = await user.wait_terminal(execution_id, timeout_s=90)
    assert result["status"] == "failed"
    assert "coordinator" in result["error"]
    terminal = [c["status"] for c in result["status_history"] if c["status"] in TERMINAL]
    assert terminal == ["failed"]
    # And the platform still works with the restarted coordinator.
    after = await user.run("print('still here')")
    assert after["status"] == "completed"
