"""Faults under load, one per case: the Mongo-wire server, Kafka, the api, the coordinator or the
notifier killed (SIGKILL), the broker frozen (SIGSTOP), or Redis stopped, while executions are
submitted and running; then restarted. Clients retry what failed with their Idempotency-Key,
as real ones do.

The invariant, checked afterwards: every execution a client got 202 for reaches exactly one
terminal status, with a history that never leaves a terminal status once shown (queued → running
→ terminal at most); its webhook arrives as one delivery; Kafka carried exactly one terminal event
for it (and at most one start), the coordinator's saga ended the same and ran it at most once, and
the event store archived the terminal event (``fault_checks``); and the platform serves new
executions without a hand.
Each case prints its line of the fault table (accepted, terminal by status, recovery time).

Bounded: 4 users submit 40 executions at about 10/s; the fault lands a third of the way in. It
stops and starts parts of the native stack of this clone, so it runs near the end and only
there.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e import fault_checks
from tests.e2e.client import TERMINAL, ApiUser, new_user
from tests.e2e.notify_receivers import RecordingReceiver, holds_for
from tests.e2e.stack_control import (
    component,
    log_tail,
    native_stack_here,
    services_ready,
    signal_group,
)
from tests.polling import eventually

USERS, EXECUTIONS, RATE_PER_S = 4, 40, 10.0

pytestmark = pytest.mark.skipif(
    not native_stack_here(), reason="needs the native stack started from this clone"
)


async def _submit_until_accepted(user: ApiUser, script: str, deadline: float) -> str | None:
    """POST with one Idempotency-Key until a 202 (or the deadline); the execution id."""
    key = uuid.uuid4().hex
    while time.monotonic() < deadline:
        try:
            response = await user.execute(script, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 202:
            return str(response.json()["execution_id"])
        if response is not None and response.status_code not in (409, 429, 500, 502, 503):
            raise AssertionError(f"unexpected answer {response.status_code}: {response.text}")
        await asyncio.sleep(0.5)  # a client's retry pace, not synchronisation
    return None


@dataclass(frozen=True)
class Fault:
    """What breaks, for how long, and how it comes back."""

    name: str
    down_for_s: float
    down: Callable[[], None]
    up: Callable[[], None]


FAULTS = [
    Fault(
        "mongo-wire kill -9",
        5,
        lambda: signal_group("ferretdb", signal.SIGKILL),
        lambda: component("ferretdb", "start"),
    ),
    Fault(
        "kafka kill -9",
        10,
        lambda: signal_group("kafka", signal.SIGKILL),
        lambda: component("kafka", "start"),
    ),
    Fault(
        "kafka frozen (SIGSTOP)",
        10,
        lambda: signal_group("kafka", signal.SIGSTOP),
        lambda: signal_group("kafka", signal.SIGCONT),
    ),
    Fault(
        "redis stopped",
        5,
        lambda: component("redis", "stop"),
        lambda: component("redis", "start"),
    ),
    Fault(
        "api kill -9",
        3,
        lambda: signal_group("svc-api", signal.SIGKILL),
        lambda: component("services", "start", "api"),
    ),
    Fault(
        "coordinator kill -9",
        3,
        lambda: signal_group("svc-coordinator", signal.SIGKILL),
        lambda: component("services", "start", "coordinator"),
    ),
    Fault(
        "notifier kill -9",
        3,
        lambda: signal_group("svc-notifier", signal.SIGKILL),
        lambda: component("services", "start", "notifier"),
    ),
]


def _history_is_one_story(doc: dict[str, Any]) -> str | None:
    """Why the status history breaks the invariant, or None."""
    statuses = [change["status"] for change in doc["status_history"]]
    terminals = [s for s in statuses if s in TERMINAL]
    if len(terminals) != 1 or statuses[-1] != terminals[0]:
        return f"not exactly one terminal status, last: {statuses}"
    if statuses[0] != "queued" or statuses.count("running") > 1:
        return f"ran twice or started oddly: {statuses}"
    if doc["status"] != terminals[0]:
        return f"status {doc['status']} differs from its history {statuses}"
    return None


async def _load_with_fault(
    users: list[ApiUser], fault: Fault
) -> tuple[dict[str, dict[str, Any]], float]:
    """The load, with the fault a third of the way in: every accepted execution's final
    document, and how long after the restart the last one was terminal."""
    script = "import time; time.sleep(0.3); print('ok')"
    started = time.monotonic()
    deadline = started + 120
    submissions: list[asyncio.Task[str | None]] = []

    async def outage() -> float:
        await asyncio.to_thread(fault.down)
        await asyncio.sleep(fault.down_for_s)  # the outage's length is the fault under test
        await asyncio.to_thread(fault.up)
        return time.monotonic()

    restore: asyncio.Task[float] | None = None
    for i in range(EXECUTIONS):
        user = users[i % USERS]
        submissions.append(asyncio.create_task(_submit_until_accepted(user, script, deadline)))
        if i == EXECUTIONS // 3:
            restore = asyncio.create_task(outage())
        await asyncio.sleep(1 / RATE_PER_S)  # the load's pace
    assert restore is not None
    restored_at = await restore

    results = await asyncio.gather(*submissions)
    owner = {eid: users[i % USERS] for i, eid in enumerate(results) if eid is not None}
    assert len(owner) == EXECUTIONS, f"only {len(owner)} of {EXECUTIONS} accepted in 120 s"

    async def terminal_docs() -> dict[str, dict[str, Any]] | None:
        docs: dict[str, dict[str, Any]] = {}
        for execution_id, user in owner.items():
            try:
                response = await user.get(execution_id)
            except httpx.TransportError:
                return None
            if response.status_code != 200:
                return None
            body: dict[str, Any] = response.json()
            if body["status"] not in TERMINAL:
                return None
            docs[execution_id] = body
        return docs

    docs = await eventually(
        terminal_docs, timeout_s=180, interval_s=1, what="every accepted execution terminal"
    )
    settled_after_s = time.monotonic() - restored_at
    return docs, settled_after_s


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_a_fault_under_load_strands_and_contradicts_nothing(
    http: httpx.AsyncClient, fault: Fault
) -> None:
    await services_ready()
    users = [await new_user(http, prefix="fault") for _ in range(USERS)]
    async with RecordingReceiver() as webhook:
        for user in users:  # every terminal execution is also a webhook
            response = await user.http.put(
                "/api/v1/notifications/settings",
                json={"webhook": {"url": webhook.url("/hook")}},
                headers=user.headers,
            )
            assert response.status_code == 200, response.text
        offsets_before = await fault_checks.end_offsets()
        docs, settled_after_s = await _load_with_fault(users, fault)

        def deliveries_by_execution() -> dict[str, list[str | None]]:
            found: dict[str, list[str | None]] = {}
            for received in webhook.requests:
                execution_id = received.json()["execution"]["execution_id"]
                found.setdefault(execution_id, []).append(
                    received.header("X-Integr8scode-Delivery")
                )
            return found

        async def every_one_delivered() -> bool:
            return set(docs) <= set(deliveries_by_execution())

        try:
            await eventually(every_one_delivered, timeout_s=120, what="a webhook per execution")
        except AssertionError as exc:
            missing = sorted(set(docs) - set(deliveries_by_execution()))
            raise AssertionError(
                f"{exc}; no webhook for {len(missing)}: {missing[:5]}\n"
                f"notifier log:\n{log_tail('svc-notifier')}"
            ) from exc

        async def one_delivery_each() -> bool:
            # At least once, as one delivery: a notifier killed between sending and recording
            # sends it again after its restart, with the same delivery id (the receiver's key
            # for deduplication). Two different deliveries for one execution would be a bug.
            found = deliveries_by_execution()
            return all(len(set(found[execution_id])) == 1 for execution_id in docs)

        await holds_for(one_delivery_each, duration_s=2)
        resent = sum(len(ids) - 1 for ids in deliveries_by_execution().values())

    broken = {eid: why for eid, doc in docs.items() if (why := _history_is_one_story(doc))}
    assert not broken, broken
    # The same story from below the api: Kafka, the coordinator's sagas, the event store.
    statuses = {execution_id: doc["status"] for execution_id, doc in docs.items()}
    carried = await fault_checks.read_between(offsets_before, await fault_checks.end_offsets())
    assert not (broken := fault_checks.kafka_story(carried, statuses)), broken
    assert not (broken := await fault_checks.saga_story(statuses)), broken
    await fault_checks.event_store_story(statuses)
    by_status: dict[str, int] = {}
    for doc in docs.values():
        by_status[doc["status"]] = by_status.get(doc["status"], 0) + 1
    print(
        f"\nfault table | {fault.name} for {fault.down_for_s:g}s | accepted {len(docs)} | "
        f"terminal {by_status} | stuck 0 | duplicated 0 (api, Kafka, sagas) | "
        f"terminal events archived {len(docs)} | webhooks {len(docs)} "
        f"(resent with the same delivery id: {resent}) | "
        f"all terminal {settled_after_s:.1f}s after restart"
    )

    # Recovered without a hand: a new execution runs.
    await services_ready()
    result = await users[0].run("print(1)")
    assert result["status"] == "completed"
