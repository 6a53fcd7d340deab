"""Issue 14's execution API through the running stack: `?wait=true`, batches and `?ids=`."""

from __future__ import annotations

import time

import httpx

from tests.e2e.client import ApiUser
from tests.jaeger import wait_for_trace
from tests.stack import local_stack

STACK = local_stack()
BATCH = "/api/v1/executions/batch"


async def test_wait_answers_the_whole_result_when_it_ends_in_time(user: ApiUser) -> None:
    response = await user.http.post(
        "/api/v1/execute?wait=true",
        json={"script": "print(6 * 7)", "language": "python"},
        headers=user.headers,
        timeout=httpx.Timeout(30),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["stdout"], body["exit_code"]) == ("completed", "42\n", 0)
    assert body == (await user.get(body["execution_id"])).json()


async def test_wait_answers_202_when_the_run_outlasts_the_bound(user: ApiUser) -> None:
    started = time.monotonic()
    response = await user.http.post(
        "/api/v1/execute?wait=true",
        json={
            "script": "import time; time.sleep(14); print('late')",
            "language": "python",
            "limits": {"timeout_s": 20, "cpu_time_s": 20},
        },
        headers=user.headers,
        timeout=httpx.Timeout(40),
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] in {"queued", "running"}
    # It held the request (the default bound is 10 s), not the whole run.
    assert time.monotonic() - started < 14
    result = await user.wait_terminal(response.json()["execution_id"])
    assert (result["status"], result["stdout"]) == ("completed", "late\n")


async def test_a_batch_runs_each_submission_and_ids_reads_them_back(user: ApiUser) -> None:
    response = await user.http.post(
        BATCH,
        json={
            "submissions": [
                {"script": "print('one')", "language": "python"},
                {"script": "x", "language": "cobol"},
                {"script": "console.log('three')", "language": "javascript"},
            ]
        },
        headers=user.headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 2
    first, refused, third = body["items"]
    assert refused["execution_id"] is None
    assert refused["error"]["status"] == 422
    assert "unknown language 'cobol'" in refused["error"]["detail"]
    ids = [first["execution_id"], third["execution_id"]]
    for execution_id in ids:
        await user.wait_terminal(execution_id)

    together = await user.http.get(
        f"/api/v1/executions?ids={ids[1]},no-such-execution,{ids[0]}", headers=user.headers
    )
    assert together.status_code == 200, together.text
    found = together.json()
    assert [e["execution_id"] for e in found["items"]] == [ids[1], ids[0]]
    assert [e["stdout"] for e in found["items"]] == ["three\n", "one\n"]
    assert found["missing"] == ["no-such-execution"]

    # Each execution is a trace of its own, rooted in a span linked to the batch request's.
    roots = []
    for execution in found["items"]:
        trace = await wait_for_trace(
            STACK.jaeger_query,
            execution["trace_id"],
            until=lambda t: "sandbox.run" in t.names() and "execute.batch_item" in t.names(),
        )
        root = trace.one("execute.batch_item")
        assert root.parent_id is None
        assert len(root.links) == 1
        roots.append(root)
    assert roots[0].links == roots[1].links  # the same batch request
    batch_trace_id, batch_span_id = roots[0].links[0]
    batch = await wait_for_trace(
        STACK.jaeger_query,
        batch_trace_id,
        until=lambda t: any(s.span_id == batch_span_id for s in t.spans),
    )
    assert batch.by_id(batch_span_id).name == f"POST {BATCH}"


async def test_bad_batches_and_id_lists_are_422(user: ApiUser) -> None:
    one = {"script": "print(1)", "language": "python"}
    too_many = await user.http.post(BATCH, json={"submissions": [one] * 21}, headers=user.headers)
    assert too_many.status_code == 422
    assert "submissions: 21 is above the maximum 20" in too_many.json()["detail"]
    empty = await user.http.post(BATCH, json={"submissions": []}, headers=user.headers)
    assert empty.status_code == 422
    not_a_batch = await user.http.post(BATCH, json=one, headers=user.headers)
    assert not_a_batch.status_code == 422
    ids = ",".join(f"id-{i}" for i in range(51))
    listing = await user.http.get(f"/api/v1/executions?ids={ids}", headers=user.headers)
    assert listing.status_code == 422
    assert "ids: 51 is above the maximum 50" in listing.json()["detail"]
    not_a_flag = await user.http.post("/api/v1/execute?wait=maybe", json=one, headers=user.headers)
    assert not_a_flag.status_code == 422


async def test_a_batch_and_ids_need_a_token(http: httpx.AsyncClient) -> None:
    assert (await http.post(BATCH, json={"submissions": []})).status_code == 401
    assert (await http.get("/api/v1/executions?ids=a")).status_code == 401
