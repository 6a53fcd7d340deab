"""Trace fidelity (issue 11, points 1 and 2), read back from Jaeger over a time window.

Each execution's trace holds its queue wait and admission (``saga.queue_wait`` and
``saga.admit``, children of the coordinator's consume span, before ``saga.execution``), with
no span whose parent is missing; and over the window no service made a root trace from
background work (a poll, a lease renewal, an outbox sweep, a readiness ping, index creation):
the census (tests/trace_census.py) finds no root span that is neither a request (server) nor a
message (consumer) nor linked to what caused it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.e2e.client import ApiUser
from tests.jaeger import JaegerSpan, JaegerTrace, wait_for_trace
from tests.polling import eventually
from tests.stack import local_stack
from tests.trace_census import exported_up_to, ready_everywhere, trace_census

STACK = local_stack()

RUNS = [
    ("python", "print(sum(range(10)))"),
    ("javascript", "console.log([...Array(10).keys()].reduce((a, b) => a + b, 0))"),
    ("bash", "echo $(( $(seq -s + 0 9) ))"),
    ("python", "import time; time.sleep(0.3); print('slow')"),
]
ADMISSION = ("saga.queue_wait", "saga.admit", "saga.execution")
# Long enough for every periodic pass to run at least twice inside the window: event-replay's
# recovery poll and the coordinator's outbox sweep (5 s), the janitor and heartbeat (lease / 3),
# the retry scheduler's poll (0.5 s locally).
WINDOW_S = 12.0
EXPORT_DEADLINE_S = 60.0  # batch export (5 s) + the collector's decision wait (2 s) + slack


def _collection(span: JaegerSpan) -> str | None:
    value = span.tag("db.collection.name") or span.tag("db.mongodb.collection")
    return str(value) if value else None


def _admitted(trace: JaegerTrace) -> bool:
    names = set(trace.names())
    return set(ADMISSION) <= names and "sandbox.run" in names


async def _admitted_trace(trace_id: str) -> JaegerTrace:
    try:
        return await wait_for_trace(
            STACK.jaeger_query, trace_id, until=_admitted, timeout_s=EXPORT_DEADLINE_S
        )
    except AssertionError:
        found = await wait_for_trace(STACK.jaeger_query, trace_id, timeout_s=5)
        missing = sorted({*ADMISSION, "sandbox.run"} - set(found.names()))
        raise AssertionError(f"trace {trace_id} lacks {missing}; it has {found.names()}") from None


def _check_admission(trace: JaegerTrace, execution_id: str) -> None:
    consume = next(
        s
        for s in trace.named("kafka.consume")
        if s.service == "execution-coordinator" and s.tag("event.type") == "execution.requested"
    )
    wait, admit, execution = (trace.one(name) for name in ADMISSION)
    for span in (wait, admit, execution):
        assert span.service == "execution-coordinator"
        assert span.parent_id == consume.span_id, f"{span.name} is not under the consume span"
        assert span.tag("execution.id") == execution_id
    # Jaeger keeps microseconds: allow one for rounding between spans that meet.
    assert wait.start_us <= wait.end_us <= admit.start_us + 1
    assert admit.end_us <= execution.start_us + 1
    assert wait.tag("saga.queue_wait_ms") is not None
    assert admit.tag("saga.admit.outcome") == "admitted"
    # The claim's Mongo calls are the admission's, in this trace.
    claims = [s for s in trace.children_of(admit) if _collection(s) == "saga_claims"]
    assert claims, f"no saga_claims call under saga.admit: {trace.names()}"


async def test_admission_in_each_trace_and_no_root_traces_from_background_work(
    http: httpx.AsyncClient, user: ApiUser
) -> None:
    start = datetime.now(UTC)
    opened = time.monotonic()
    await ready_everywhere(http)

    results: list[dict[str, Any]] = await asyncio.gather(
        *(user.run(script, language) for language, script in RUNS)
    )
    for result in results:
        assert result["status"] == "completed", result
        assert result["trace_id"], result
    ours: list[str] = []  # trace ids as Jaeger spells them
    for result in results:
        trace = await _admitted_trace(result["trace_id"])
        _check_admission(trace, result["execution_id"])
        ours.append(trace.trace_id)

    await ready_everywhere(http)

    # The window is a length of time to observe, not a wait for some outcome: it must cover
    # a few passes of every periodic loop.
    async def window_long_enough() -> bool:
        return time.monotonic() - opened >= WINDOW_S

    await eventually(window_long_enough, timeout_s=WINDOW_S + 5, interval_s=0.5, what="window")
    end = datetime.now(UTC)
    await exported_up_to(http, end)

    census = await trace_census(STACK.jaeger_query, start, end, STACK.services)
    assert not census.truncated, f"Jaeger's search hit its limit for {census.truncated}"
    stray = census.background_roots()
    assert stray == [], (
        f"{len(stray)} root trace(s) from background work, per service {census.summary()}:\n"
        + "\n".join(r.describe() for r in stray[:40])
    )
    assert set(ours) <= set(census.traces)
    orphans = census.missing_parents_in(ours)
    assert orphans == [], "\n".join(m.describe() for m in orphans)
