"""A scheduled retry survives a restart of the dlq-processor (all its state is in Mongo).

Restarts the RUNNING service through services.sh — first with a retry policy of 10 s for this
test's topic (``jitter: none``, so the retry is due at a known time), then again with the
local profile — so it runs last (file name) and only with the native stack of this clone.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.kafka_support import sample_event
from tests.polling import eventually

from integr8scode_events.kafka import EventPublisher

if TYPE_CHECKING:  # conftest is not importable at run time (--import-mode=importlib)
    from conftest import ConsumerFactory, DeliveriesFactory

ROOT = Path(__file__).resolve().parents[4]
SERVICES = ROOT / "deploy" / "local" / "components" / "services.sh"
PID = ROOT / ".local" / "pids" / "svc-dlq-processor.pid"
DELAY_S = 10.0

pytestmark = pytest.mark.skipif(
    not PID.exists(), reason="needs the native stack (and its dlq-processor) from this clone"
)


async def _services(command: str, env: dict[str, str] | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(SERVICES),
        command,
        "dlq-processor",
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode(errors="replace")


async def _restart(env: dict[str, str] | None = None) -> None:
    await _services("stop")
    await _services("start", env)


@pytest.fixture
async def restarts() -> AsyncIterator[None]:
    """Leaves the service running with the local profile whatever the test did."""
    try:
        yield
    finally:
        await _restart()


async def test_a_scheduled_retry_fires_after_a_restart(
    *,
    restarts: None,
    publisher: EventPublisher,
    consumer: ConsumerFactory,
    deliveries: DeliveriesFactory,
    topic: str,
    dlq: httpx.AsyncClient,
) -> None:
    policy = {"topic": topic, "initial_backoff_s": DELAY_S, "max_backoff_s": DELAY_S}
    await _restart({"DLQ_RETRY_POLICIES": json.dumps([{**policy, "jitter": "none"}])})
    group = f"test-dlq-{uuid.uuid4().hex[:8]}"
    seen = deliveries(1)
    await consumer(group, seen)
    event = sample_event()
    await publisher.publish(event, topic=topic)

    async def scheduled() -> dict[str, Any] | None:
        listed = await dlq.get("/api/v1/dlq/messages", params={"execution_id": event.execution_id})
        items = listed.json()["items"] if listed.status_code == 200 else []
        return items[0] if items and items[0]["status"] == "scheduled" else None

    record = await eventually(scheduled, timeout_s=30, what="dead letter scheduled")
    due = datetime.fromisoformat(record["next_attempt_at"])
    await _restart()  # the local profile again: the record keeps its own policy and due time

    assert datetime.now(UTC) < due, "the restart took longer than the backoff; nothing shown"
    still = (await dlq.get(f"/api/v1/dlq/messages/{record['id']}")).json()
    assert still["status"] == "scheduled"
    assert len(seen.seen) == 1

    _, retry = await seen.wait_for(2, timeout_s=DELAY_S + 30)
    assert datetime.now(UTC) >= due
    assert retry.headers["x-dead-letter-id"] == record["id"]

    async def retried() -> dict[str, Any] | None:
        body: dict[str, Any] = (await dlq.get(f"/api/v1/dlq/messages/{record['id']}")).json()
        return body if body["status"] == "retried" else None

    final = await eventually(retried, timeout_s=30, what="record retried")
    assert final["policy"]["rule"] == f"topic={topic}"
    assert final["policy"]["initial_backoff_s"] == DELAY_S
