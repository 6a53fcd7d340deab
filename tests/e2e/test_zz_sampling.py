"""Tail sampling below 100 % keeps a trace whole or drops it whole, late DLQ retries included.

The collector is restarted with ``COLLECTOR_SAMPLING_PERCENT=10``, a decision wait longer than
the services' export delay (``COLLECTOR_DECISION_WAIT=10s``; the stack's 2 s suits 100 % only)
and the slow-trace policy out of the way (what is kept is the hash's decision or an error), then:
- 100 plain executions: about 10 % of their traces are in Jaeger, each whole;
- 10 executions whose webhook fails until their dead letters are retried: the failure is an
  error, so each trace is kept, and it is whole — including the retry's spans, which arrive
  long after the collector decided the trace;
- over the window, no trace in Jaeger has a span whose parent is missing, and every trace about
  an execution is rooted at the client's POST (no fragment kept alone).
The collector is restarted as it was afterwards. It stops and starts a part of the native stack
of this clone, so it runs near the end and only there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.e2e.client import ApiUser, new_user
from tests.e2e.notify_receivers import Answer, RecordingReceiver
from tests.e2e.stack_control import component, native_stack_here
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.polling import eventually
from tests.stack import local_stack
from tests.trace_census import trace_census

STACK = local_stack()
PLAIN, THROUGH_DLQ, CONCURRENCY = 100, 10, 5
NOTIFIER_ATTEMPTS = 3  # NOTIFIER_DELIVERY_ATTEMPTS' default
PERCENT = 10
DECISION_WAIT = "10s"
BROKEN = Answer(500, "receiver is broken")

pytestmark = pytest.mark.skipif(
    not native_stack_here(), reason="needs the native stack started from this clone"
)


@pytest.fixture
async def sampled_collector() -> AsyncIterator[None]:
    component("collector", "stop")
    component(
        "collector",
        "start",
        env={
            "COLLECTOR_SAMPLING_PERCENT": str(PERCENT),
            "COLLECTOR_SLOW_TRACE_MS": "600000",
            # Longer than a service's export delay (5 s) plus a run: judged on whole traces.
            "COLLECTOR_DECISION_WAIT": DECISION_WAIT,
        },
    )
    try:
        yield
    finally:
        component("collector", "stop")
        component("collector", "start")


async def _kept(user: ApiUser) -> None:
    """A timed-out execution is an error, so its trace is kept: once it is in Jaeger, every
    service exports through the restarted collector again."""
    result = await user.run("while True: pass", limits={"timeout_s": 1, "memory_mb": 128})
    assert result["status"] == "timed_out", result

    def with_its_sandbox(trace: JaegerTrace) -> bool:
        return "sandbox.run" in trace.names()

    await wait_for_trace(STACK.jaeger_query, result["trace_id"], until=with_its_sandbox)


def _retried_whole(trace: JaegerTrace) -> bool:
    names = set(trace.names())
    delivered = any(
        s.service == "notifier" and s.tag("http.response.status_code") == 200 for s in trace.spans
    )
    return {"sandbox.run", "dlq.consume", "dlq.retry"} <= names and delivered


async def _delivered(user: ApiUser, execution_id: str) -> bool:
    response = await user.http.get(
        "/api/v1/notifications", params={"execution_id": execution_id}, headers=user.headers
    )
    items = response.json()["items"] if response.status_code == 200 else []
    return any(i["channel"] == "webhook" and i["status"] == "delivered" for i in items)


@pytest.mark.usefixtures("sampled_collector")
async def test_at_ten_percent_every_trace_is_whole_and_about_a_tenth_are_kept(
    http: httpx.AsyncClient, user: ApiUser
) -> None:
    start = datetime.now(UTC)
    await _kept(user)

    gate = asyncio.Semaphore(CONCURRENCY)

    async def plain_run(i: int) -> dict[str, Any]:
        async with gate:
            return await user.run(f"print({i})")

    plain = await asyncio.gather(*(plain_run(i) for i in range(PLAIN)))
    assert {r["status"] for r in plain} == {"completed"}

    notified = await new_user(http, prefix="sampling")
    # Each execution's webhook fails the notifier's attempts (3), is dead-lettered, and the
    # DLQ processor's first retry lands: the retry's spans come seconds after the decision.
    story = (BROKEN,) * NOTIFIER_ATTEMPTS + (Answer(),)
    async with RecordingReceiver(story, per_execution=True) as receiver:
        settings = await notified.http.put(
            "/api/v1/notifications/settings",
            json={"webhook": {"url": receiver.url("/hook")}},
            headers=notified.headers,
        )
        assert settings.status_code == 200, settings.text
        failing = await asyncio.gather(
            *(notified.run(f"print('dlq {i}')") for i in range(THROUGH_DLQ))
        )

        async def all_delivered() -> bool:
            for result in failing:
                if not await _delivered(notified, result["execution_id"]):
                    return False
            return True

        await eventually(all_delivered, timeout_s=120, interval_s=1, what="every retry delivered")

    # Kept whole, late retry included. By the time these are in Jaeger, every service has
    # exported (in order) everything it did for the plain runs before them.
    for result in failing:
        await wait_for_trace(
            STACK.jaeger_query, result["trace_id"], until=_retried_whole, timeout_s=90
        )
    end = datetime.now(UTC)

    census = await trace_census(STACK.jaeger_query, start, end, STACK.services)
    assert not census.truncated, census.truncated
    orphans = census.missing_parents
    assert orphans == [], "\n".join(m.describe() for m in orphans[:40])
    for trace_id, trace in census.traces.items():
        if any(s.tag("execution.id") for s in trace.spans):
            [root] = [s for s in trace.spans if s.parent_id is None]
            assert (root.kind, root.tag("http.request.method")) == ("server", "POST"), (
                f"trace {trace_id} about an execution is rooted at {root.service} {root.name}"
            )
    in_jaeger = {trace_id.rjust(32, "0") for trace_id in census.traces}
    present = sum(1 for r in plain if r["trace_id"].rjust(32, "0") in in_jaeger)
    print(f"\nsampling at {PERCENT}%: {present} of {PLAIN} plain traces kept")
    # Binomial(100, 0.1): 0 or more than 30 has a probability below 1e-4.
    assert 1 <= present <= 30, present
