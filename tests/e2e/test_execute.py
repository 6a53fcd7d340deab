"""The main job end to end: execute in each runtime, SSE, and one trace per execution."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.e2e.client import ApiUser
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.stack import local_stack

STACK = local_stack()

SCRIPTS = {
    "python": "print(sum(range(10)))",
    "javascript": "console.log([...Array(10).keys()].reduce((a, b) => a + b, 0))",
    "bash": "echo $(( $(seq -s + 0 9) ))",
}


async def _enforced_by(trace_id: str) -> str:
    """What enforced the run's limits, as its ``sandbox.run`` span says (cgroups or rlimits)."""
    trace = await wait_for_trace(
        STACK.jaeger_query, trace_id, until=lambda t: "sandbox.run" in t.names()
    )
    return str(trace.one("sandbox.run").tag("sandbox.enforced"))


@pytest.mark.contract
async def test_runtimes_list_the_three_languages(user: ApiUser) -> None:
    response = await user.http.get("/api/v1/runtimes", headers=user.headers)
    assert response.status_code == 200
    runtimes = {r["language"]: r for r in response.json()}
    assert {"python", "javascript", "bash"} <= set(runtimes)
    for runtime in runtimes.values():
        assert runtime["default_version"] in runtime["versions"]


@pytest.mark.contract
@pytest.mark.parametrize("language", sorted(SCRIPTS))
async def test_execute_runs_to_completion_in_each_runtime(user: ApiUser, language: str) -> None:
    response = await user.execute(SCRIPTS[language], language)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    result = await user.wait_terminal(accepted["execution_id"])
    assert result["status"] == "completed", result
    assert result["stdout"] == "45\n"
    assert result["exit_code"] == 0
    assert result["language"] == language
    usage = result["resource_usage"]
    assert usage["wall_time_ms"] > 0
    assert usage["cpu_time_ms"] >= 0
    if "cgroup.memory" in await _enforced_by(result["trace_id"]):
        assert usage["peak_memory_kb"] > 0  # the run's memory cgroup sees even a 5 ms run
    else:
        # Rlimits only (a container without a delegated cgroup): peak memory comes from samples
        # every 20 ms, which a run as short as the bash one can fall between (docs/containers.md).
        assert usage["peak_memory_kb"] >= 0
    assert result["started_at"]
    assert result["finished_at"]
    assert result["trace_id"]
    history = [change["status"] for change in result["status_history"]]
    assert history == ["queued", "running", "completed"]


@pytest.mark.contract
async def test_sse_delivers_running_then_completed(user: ApiUser) -> None:
    response = await user.execute("import time; time.sleep(0.5); print('done')")
    execution_id = response.json()["execution_id"]
    statuses = await asyncio.wait_for(user.sse_statuses(execution_id), timeout=60)
    assert statuses == ["queued", "running", "completed"]


@pytest.mark.contract
async def test_one_trace_holds_the_whole_execution(user: ApiUser) -> None:
    response = await user.execute(SCRIPTS["python"])
    execution_id = response.json()["execution_id"]
    result = await user.wait_terminal(execution_id)
    trace_id = result["trace_id"]

    def complete(trace: JaegerTrace) -> bool:
        names = trace.names()
        return (
            "sandbox.run" in names
            and any(n.startswith("publish execution_events") for n in names)
            and len([s for s in trace.spans if s.name == "kafka.consume"]) >= 2
        )

    trace = await wait_for_trace(STACK.jaeger_query, trace_id, until=complete)
    assert {"integr8scode-backend", "execution-coordinator"} <= trace.services()

    server = next(
        s
        for s in trace.spans
        if s.service == "integr8scode-backend" and s.kind == "server" and "/execute" in s.name
    )
    assert server.tag("user.id")
    assert server.tag("execution.id") == execution_id
    assert server.tag("execution.language") == "python"
    assert server.tag("execution.language_version")
    assert server.tag("execution.script_length") == len(SCRIPTS["python"].encode())
    assert server.tag("client.address")
    assert server.tag("rate_limit.allowed") is True

    request_publish = trace.one("publish execution_requests")
    assert request_publish.service == "integr8scode-backend"
    assert _has_ancestor(trace, request_publish, server)

    consume = next(
        s
        for s in trace.named("kafka.consume")
        if s.service == "execution-coordinator" and trace.parent_of(s) == request_publish
    )
    assert consume.tag("event.type") == "execution.requested"
    assert consume.tag("execution.id") == execution_id

    steps = {s.tag("saga.step") for s in trace.named("saga.step")}
    assert {"validate", "run", "store_result", "release"} <= steps
    sandbox = trace.one("sandbox.run")
    assert sandbox.service == "execution-coordinator"
    assert sandbox.tag("sandbox.exit_code") == 0
    assert sandbox.tag("execution.status") == "completed"
    assert _has_ancestor(trace, sandbox, consume)

    mongo = [s for s in trace.spans if s.tag("db.system.name") == "mongodb"]
    assert all(s.tag("db.system") is None for s in mongo)  # only the current conventions
    assert all(s.tag("db.collection.name") for s in mongo if s.tag("db.operation.name") != "ping")
    assert any(s.name == "insert executions" for s in mongo)
    assert any(s.service == "execution-coordinator" for s in mongo)
    assert any(s.service == "integr8scode-backend" for s in mongo)

    terminal = [
        s
        for s in trace.named("publish execution_events")
        if s.tag("event.type") == "execution.completed"
    ]
    assert len(terminal) == 1
    assert _has_ancestor(trace, terminal[0], consume)


def _has_ancestor(trace: JaegerTrace, span: object, ancestor: object) -> bool:
    current = span
    seen = 0
    while getattr(current, "parent_id", None) and seen < 64:
        current = trace.by_id(current.parent_id)  # type: ignore[attr-defined]
        if current == ancestor:
            return True
        seen += 1
    return False


async def test_idempotency_key_gives_the_same_execution(user: ApiUser) -> None:
    headers = {"Idempotency-Key": "e2e-same-key"}
    first = await user.execute("print('once')", headers=headers)
    second = await user.execute("print('once')", headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["execution_id"] == second.json()["execution_id"]
    await user.wait_terminal(first.json()["execution_id"])
    listed = await user.http.get("/api/v1/executions", headers=user.headers)
    assert listed.json()["total"] == 1


async def test_listing_is_own_and_newest_first(http: httpx.AsyncClient, user: ApiUser) -> None:
    ids = []
    for i in range(3):
        response = await user.execute(f"print({i})")
        ids.append(response.json()["execution_id"])
    listed = await http.get("/api/v1/executions?limit=2", headers=user.headers)
    body = listed.json()
    assert body["total"] == 3
    assert [item["execution_id"] for item in body["items"]] == ids[::-1][:2]
