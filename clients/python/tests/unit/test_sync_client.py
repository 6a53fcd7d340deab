"""The blocking client: the same calls, outside any event loop."""

from __future__ import annotations

import pytest
from client_fakes import EXEC_ID, TOKEN, FakeApi

from integr8scode_client import Client, ExecuteRequest, Unauthorized


def test_login_run_and_events_without_an_event_loop() -> None:
    api = FakeApi()
    heard: list[str] = []
    with Client("http://api", transport=api.transport) as client:
        client.login("alice", "pw")
        assert client.token == TOKEN
        result = client.run(ExecuteRequest("print('hello')", "python"), on_status=heard.append)
        statuses = [e.status for e in client.events(EXEC_ID)]
    assert result.stdout == "hello\n"
    assert heard == ["queued", "running", "completed"]
    assert statuses == ["queued", "running", "completed"]


def test_errors_come_through_unchanged() -> None:
    api = FakeApi()
    api.on("GET /api/v1/runtimes", 401, {"detail": "token expired"})
    with (
        Client("http://api", "old", transport=api.transport) as client,
        pytest.raises(Unauthorized, match="token expired"),
    ):
        client.runtimes()
