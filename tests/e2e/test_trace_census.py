"""The trace census (issue 11): every execution is exactly one whole trace.

Mixed executions — three runtimes completed, one timed out, one cancelled while running, and
one whose webhook fails until its dead letter is retried — each give one trace that holds, under
the client's POST: the queue wait and admission, the saga, the sandbox run, the terminal publish
and every consumer of the terminal event (api, notifier, the event store's archiver), and for the
dead-lettered one the DLQ processor's consume and retry. Over the window, no service made a root
trace from background work, no span's parent is missing from its trace, and no span about one
of these executions is in any other trace (other than another client request's, like the
cancel's: a request of its own).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.e2e.client import ApiUser, new_user
from tests.e2e.notify_receivers import Answer, RecordingReceiver
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.polling import eventually
from tests.stack import local_stack
from tests.trace_census import exported_up_to, ready_everywhere, trace_census

STACK = local_stack()
WINDOW_S = 12.0  # a few passes of every periodic loop (see test_trace_fidelity)
TRACE_DEADLINE_S = 90.0
ADMISSION = {"saga.queue_wait", "saga.admit", "saga.execution", "sandbox.run"}
CONSUMERS = {"integr8scode-backend", "notifier", "event-replay"}
BROKEN = Answer(500, "receiver is broken")


def _expected(status: str, *, dead_lettered: bool = False) -> Callable[[JaegerTrace], bool]:
    """What the execution's trace must hold once every service has exported it."""

    def whole(trace: JaegerTrace) -> bool:
        return not _missing(trace, status, dead_lettered=dead_lettered)

    return whole


def _missing(trace: JaegerTrace, status: str, *, dead_lettered: bool = False) -> list[str]:
    terminal = f"execution.{status}"
    names = set(trace.names())
    missing = sorted(ADMISSION - names)
    if not any(
        s.name == "publish execution_events" and s.tag("event.type") == terminal
        for s in trace.spans
    ):
        missing.append(f"publish {terminal}")
    # kafka.consume, or the archiver's event_store.archive when it took the event alone
    consumed_by = {
        s.service for s in trace.spans if s.kind == "consumer" and s.tag("event.type") == terminal
    }
    missing += [f"{service} consuming {terminal}" for service in sorted(CONSUMERS - consumed_by)]
    if dead_lettered:
        missing += sorted({"dlq.consume", "dlq.retry"} - names)
    return missing


async def _trace_of(result: dict[str, Any], *, dead_lettered: bool = False) -> JaegerTrace:
    status = result["status"]
    try:
        return await wait_for_trace(
            STACK.jaeger_query,
            result["trace_id"],
            until=_expected(status, dead_lettered=dead_lettered),
            timeout_s=TRACE_DEADLINE_S,
        )
    except AssertionError:
        found = await wait_for_trace(STACK.jaeger_query, result["trace_id"], timeout_s=5)
        missing = _missing(found, status, dead_lettered=dead_lettered)
        raise AssertionError(
            f"{result['execution_id']} ({status}): trace {result['trace_id']} lacks {missing}"
        ) from None


async def _cancelled_while_running(user: ApiUser) -> dict[str, Any]:
    response = await user.execute("import time; time.sleep(30)")
    assert response.status_code == 202, response.text
    execution_id = response.json()["execution_id"]

    async def running() -> bool:
        return bool((await user.get(execution_id)).json()["status"] == "running")

    await eventually(running, timeout_s=30, what=f"{execution_id} running")
    cancel = await user.http.post(f"/api/v1/executions/{execution_id}/cancel", headers=user.headers)
    assert cancel.status_code == 202, cancel.text
    return await user.wait_terminal(execution_id)


async def _dead_lettered_then_delivered(user: ApiUser) -> dict[str, Any]:
    """Its webhook fails until the failure reached the DLQ processor, then the retry lands."""
    async with RecordingReceiver((BROKEN,)) as receiver:
        settings = await user.http.put(
            "/api/v1/notifications/settings",
            json={"webhook": {"url": receiver.url("/hook")}},
            headers=user.headers,
        )
        assert settings.status_code == 200, settings.text
        result = await user.run("print('through the dead-letter queue')")

        async def failed_once() -> bool:
            return len(receiver.requests) >= 1

        await eventually(failed_once, timeout_s=60, what="the webhook tried")
        async with httpx.AsyncClient(base_url=STACK.jaeger_query, timeout=10) as jaeger:

            async def dead_lettered() -> bool:
                response = await jaeger.get(f"/api/traces/{result['trace_id']}")
                spans = (response.json().get("data") or [{}])[0].get("spans", [])
                return any(s["operationName"] == "dlq.consume" for s in spans)

            await eventually(dead_lettered, timeout_s=60, what="the dead letter consumed")
        receiver.answer_with(Answer())

        async def delivered() -> bool:
            response = await user.http.get(
                "/api/v1/notifications",
                params={"execution_id": result["execution_id"]},
                headers=user.headers,
            )
            items = response.json()["items"] if response.status_code == 200 else []
            return any(i["channel"] == "webhook" and i["status"] == "delivered" for i in items)

        await eventually(delivered, timeout_s=60, what="the retried webhook accepted")
    return result


@pytest.mark.contract
async def test_every_execution_is_one_whole_trace_and_nothing_else_is_a_root(
    http: httpx.AsyncClient, user: ApiUser
) -> None:
    start = datetime.now(UTC)
    opened = time.monotonic()
    await ready_everywhere(http)
    notified = await new_user(http, prefix="census")

    plain = await asyncio.gather(
        user.run("print(sum(range(10)))"),
        user.run("console.log(45)", "javascript"),
        user.run("echo 45", "bash"),
        user.run("while True: pass", limits={"timeout_s": 1, "memory_mb": 128}),
        _cancelled_while_running(user),
    )
    assert [r["status"] for r in plain] == [
        "completed",
        "completed",
        "completed",
        "timed_out",
        "cancelled",
    ], plain
    through_dlq = await _dead_lettered_then_delivered(notified)
    assert through_dlq["status"] == "completed", through_dlq

    traces = {r["execution_id"]: await _trace_of(r) for r in plain}
    traces[through_dlq["execution_id"]] = await _trace_of(through_dlq, dead_lettered=True)
    [timed_out] = [traces[r["execution_id"]] for r in plain if r["status"] == "timed_out"]
    assert timed_out.one("sandbox.run").tag("error.type") == "timeout"
    for execution_id, trace in traces.items():
        [root] = [s for s in trace.spans if s.parent_id is None]
        assert root.service == "integr8scode-backend", (execution_id, root.name)
        assert root.kind == "server"
        assert root.tag("http.request.method") == "POST"

    await ready_everywhere(http)

    async def window_long_enough() -> bool:  # a span of time to observe, not a wait
        return time.monotonic() - opened >= WINDOW_S

    await eventually(window_long_enough, timeout_s=WINDOW_S + 5, interval_s=0.5, what="window")
    end = datetime.now(UTC)
    await exported_up_to(http, end)

    census = await trace_census(STACK.jaeger_query, start, end, STACK.services)
    assert not census.truncated, f"Jaeger's search hit its limit for {census.truncated}"
    stray = census.background_roots(one_span_only=False)
    assert stray == [], (
        f"{len(stray)} root trace(s) from background work, per service {census.summary()}:\n"
        + "\n".join(r.describe() for r in stray[:40])
    )
    ours = {trace.trace_id for trace in traces.values()}
    assert ours <= set(census.traces)
    orphans = census.missing_parents_in(ours)
    assert orphans == [], "\n".join(m.describe() for m in orphans)
    # Exactly one trace per execution: no span about one of them in any trace other than its
    # own, except the traces of other client requests about it (a status poll, the cancel),
    # which are requests of their own.
    for trace_id, found in census.traces.items():
        roots = [s for s in found.spans if s.parent_id is None]
        if any(root.kind == "server" for root in roots):
            continue
        for span in found.spans:
            execution_id = span.tag("execution.id")
            if execution_id in traces and trace_id != traces[execution_id].trace_id:
                raise AssertionError(
                    f"{span.service} {span.name} about {execution_id} is in trace {trace_id}, "
                    f"not in the execution's {traces[execution_id].trace_id}"
                )
