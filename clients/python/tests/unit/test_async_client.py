"""The async client against a fake API behind httpx.MockTransport."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from client_fakes import EXEC_ID, TOKEN, FakeApi, execution, sse

from integr8scode_client import (
    AsyncClient,
    ExecuteRequest,
    Limits,
    NotSupported,
    Unavailable,
    WaitTimeout,
    WorkFile,
)


def _client(api: FakeApi, token: str | None = TOKEN) -> AsyncClient:
    return AsyncClient("http://api", token, transport=api.transport)


async def test_login_keeps_the_token_and_later_calls_carry_it() -> None:
    api = FakeApi()
    async with _client(api, token=None) as client:
        token = await client.login("alice", "pw")
        await client.runtimes()
    assert token.access_token == TOKEN
    assert api.body("POST /api/v1/auth/login") == {"username": "alice", "password": "pw"}
    assert "authorization" not in api.sent("POST /api/v1/auth/login")[0].headers
    assert api.sent("GET /api/v1/runtimes")[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_execute_sends_only_what_is_set() -> None:
    api = FakeApi()
    async with _client(api) as client:
        submitted = await client.execute(ExecuteRequest("print(1)", "python"))
    assert submitted.execution_id == EXEC_ID
    assert api.body("POST /api/v1/execute") == {"script": "print(1)", "language": "python"}
    assert "base64" not in api.sent("POST /api/v1/execute")[0].url.params


async def test_execute_sends_every_field_and_the_idempotency_key() -> None:
    api = FakeApi()
    request = ExecuteRequest(
        "import sys",
        "python",
        language_version="3.11",
        stdin="1 2\n",
        args=["a", "--b"],
        files=[WorkFile("in.txt", "3 4\n")],
        expected_stdout="7",
        limits=Limits(timeout_s=2, max_output_kb=64),
    )
    async with _client(api) as client:
        await client.execute(request, idempotency_key="k-1")
    sent = api.sent("POST /api/v1/execute")[0]
    assert sent.headers["idempotency-key"] == "k-1"
    assert json.loads(sent.content) == {
        "script": "import sys",
        "language": "python",
        "language_version": "3.11",
        "stdin": "1 2\n",
        "args": ["a", "--b"],
        "files": [{"name": "in.txt", "content": "3 4\n"}],
        "expected_stdout": "7",
        "limits": {"timeout_s": 2, "max_output_kb": 64},
    }


async def test_bytes_switch_the_whole_request_to_base64() -> None:
    api = FakeApi()
    request = ExecuteRequest("print(1)", "python", stdin=b"\x00\xff", files=[WorkFile("f", "t")])
    async with _client(api) as client:
        await client.execute(request)
    sent = api.sent("POST /api/v1/execute")[0]
    assert sent.url.params["base64"] == "true"
    body = json.loads(sent.content)
    assert base64.b64decode(body["script"]) == b"print(1)"
    assert base64.b64decode(body["stdin"]) == b"\x00\xff"
    assert base64.b64decode(body["files"][0]["content"]) == b"t"


async def test_execute_with_wait_gives_the_whole_result_when_the_api_had_it() -> None:
    api = FakeApi()
    api.on("POST /api/v1/execute", 200, execution(stdout="done\n"))
    async with _client(api) as client:
        submitted = await client.execute(ExecuteRequest("x", "python"), wait=True)
    assert api.sent("POST /api/v1/execute")[0].url.params["wait"] == "true"
    assert submitted.result is not None
    assert submitted.result.stdout == "done\n"


async def test_get_decodes_base64_output_to_the_exact_bytes() -> None:
    api = FakeApi()
    raw = b"\xff\x00binary"
    api.polls = [execution(stdout=base64.b64encode(raw).decode(), encoding="base64")]
    async with _client(api) as client:
        found = await client.get(EXEC_ID, base64=True)
    assert api.sent(f"GET /api/v1/executions/{EXEC_ID}")[0].url.params["base64"] == "true"
    assert found.stdout_bytes() == raw


async def test_a_newer_apis_extra_fields_are_kept() -> None:
    api = FakeApi()
    api.polls = [
        execution(
            verdict="accepted",
            compile={"exit_code": 0, "stdout": "", "stderr": "", "wall_time_ms": 300},
            brand_new={"x": 1},
        )
    ]
    async with _client(api) as client:
        found = await client.get(EXEC_ID)
    assert found.verdict == "accepted"
    assert found.compile is not None
    assert found.compile.wall_time_ms == 300
    assert found.model_extra == {"brand_new": {"x": 1}}


async def test_wait_follows_the_events_then_reads_the_result() -> None:
    api = FakeApi()
    heard: list[str] = []
    async with _client(api) as client:
        result = await client.wait(EXEC_ID, on_status=heard.append)
    assert heard == ["queued", "running", "completed"]
    assert result.stdout == "hello\n"
    events = api.sent(f"GET /api/v1/executions/{EXEC_ID}/events")[0]
    assert events.headers["authorization"] == f"Bearer {TOKEN}"


async def test_wait_falls_back_to_polling_when_the_stream_fails() -> None:
    api = FakeApi()
    api.on(f"GET /api/v1/executions/{EXEC_ID}/events", 503, {"detail": "feed down"})
    api.polls = [execution("queued"), execution("running"), execution("completed")]
    heard: list[str] = []
    async with _client(api) as client:
        result = await client.wait(EXEC_ID, on_status=heard.append, poll_interval_s=0.01)
    assert result.status == "completed"
    assert heard == ["queued", "running", "completed"]
    assert len(api.sent(f"GET /api/v1/executions/{EXEC_ID}")) == 3


async def test_wait_polls_when_the_stream_ends_before_a_terminal_status() -> None:
    api = FakeApi()
    api.on_sse(sse("queued"))
    api.polls = [execution("running"), execution("timed_out", exit_code=None)]
    heard: list[str] = []
    async with _client(api) as client:
        result = await client.wait(EXEC_ID, on_status=heard.append, poll_interval_s=0.01)
    assert result.status == "timed_out"
    assert heard == ["queued", "running", "timed_out"]


async def test_wait_gives_up_at_its_deadline() -> None:
    api = FakeApi()
    api.fail(
        f"GET /api/v1/executions/{EXEC_ID}/events",
        httpx.RemoteProtocolError("peer closed connection"),
    )
    api.polls = [execution("running")]
    async with _client(api) as client:
        with pytest.raises(WaitTimeout) as caught:
            await client.wait(EXEC_ID, timeout_s=0.2, poll_interval_s=0.05)
    assert caught.value.status == "running"
    assert caught.value.execution_id == EXEC_ID


async def test_wait_does_not_hide_a_real_error() -> None:
    api = FakeApi()
    api.on(f"GET /api/v1/executions/{EXEC_ID}/events", 401, {"detail": "token expired"})
    async with _client(api) as client:
        with pytest.raises(Exception, match="token expired"):
            await client.wait(EXEC_ID)


async def test_ids_and_batch_say_not_supported_on_an_older_api() -> None:
    api = FakeApi()
    page = {"items": [execution()], "limit": 20, "offset": 0, "total": 1}
    api.on("GET /api/v1/executions", 200, page)  # an API that ignores ?ids=
    api.on("POST /api/v1/executions/batch", 405, {"detail": "Method Not Allowed"})
    async with _client(api) as client:
        with pytest.raises(NotSupported, match=r"\?ids="):
            await client.get_many(["other-1", "other-2"])
        with pytest.raises(NotSupported, match="POST /api/v1/executions/batch"):
            await client.batch([ExecuteRequest("x", "python")])


async def test_ids_and_batch_on_an_api_that_has_them() -> None:
    api = FakeApi()
    api.on(
        "GET /api/v1/executions",
        200,
        {"items": [execution()], "missing": ["e-9"]},
    )
    api.on(
        "POST /api/v1/executions/batch",
        202,
        {
            "items": [
                {"index": 0, "execution_id": "e-1", "status": "queued", "error": None},
                {"index": 1, "error": {"status": 422, "detail": "unknown language 'cobol'"}},
            ],
            "accepted": 1,
        },
    )
    async with _client(api) as client:
        found = await client.get_many([EXEC_ID, "e-9"])
        items = await client.batch([ExecuteRequest("x", "python"), ExecuteRequest("y", "cobol")])
    assert [e.execution_id for e in found] == [EXEC_ID]
    assert api.sent("GET /api/v1/executions")[0].url.params["ids"] == f"{EXEC_ID},e-9"
    assert [i.execution_id for i in items] == ["e-1", None]
    assert items[1].error is not None
    assert (items[1].error.status, items[1].error.detail) == (422, "unknown language 'cobol'")
    assert len(api.body("POST /api/v1/executions/batch")["submissions"]) == 2


async def test_timeline_is_read_loosely() -> None:
    api = FakeApi()
    api.on(
        f"GET /api/v1/executions/{EXEC_ID}/timeline",
        200,
        {
            "trace_id": "t",
            "complete": False,
            "missing": ["notifier"],
            "total_ms": 120.0,
            "phases": [
                {"name": "accepted", "offset_ms": 0, "duration_ms": 5, "service": "api"},
                {"name": "sandbox", "start_ms": 40, "duration_ms": 70, "critical": True, "x": 1},
            ],
            "links": {"jaeger": "http://jaeger/trace/t"},
            "something_new": 1,
        },
    )
    async with _client(api) as client:
        timeline = await client.timeline(EXEC_ID)
    assert [p.name for p in timeline.phases] == ["accepted", "sandbox"]
    assert timeline.phases[0].start_ms == 0
    assert timeline.phases[1].critical is True
    assert timeline.complete is False
    assert timeline.jaeger_link() == "http://jaeger/trace/t"


async def test_notification_settings_round_trip() -> None:
    api = FakeApi()
    view = {"webhook": {"url": "https://h/x?***", "has_secret": True}, "slack": None}
    api.on("GET /api/v1/notifications/settings", 200, view)
    api.on("PUT /api/v1/notifications/settings", 200, view)
    async with _client(api) as client:
        got = await client.notification_settings()
        put = await client.set_notification_settings(
            webhook_url="https://h/x?t=1", webhook_secret="s" * 16
        )
    assert got.webhook is not None
    assert got.webhook.has_secret
    assert put.slack is None
    assert api.body("PUT /api/v1/notifications/settings") == {
        "webhook": {"url": "https://h/x?t=1", "secret": "s" * 16},
        "slack": None,
    }


async def test_cancel_and_runtimes() -> None:
    api = FakeApi()
    api.on(f"POST /api/v1/executions/{EXEC_ID}/cancel", 202, {"execution_id": EXEC_ID})
    async with _client(api) as client:
        accepted = await client.cancel(EXEC_ID)
        runtimes = await client.runtimes()
    assert accepted.status == "cancelling"
    assert runtimes[0].language == "python"


async def test_a_broken_stream_mid_way_is_unavailable_to_events() -> None:
    api = FakeApi()
    api.fail(f"GET /api/v1/executions/{EXEC_ID}/events", httpx.ConnectError("refused"))
    async with _client(api) as client:
        with pytest.raises(Unavailable):
            async for _ in client.events(EXEC_ID):
                pass
