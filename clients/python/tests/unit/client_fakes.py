"""A fake of the public API behind ``httpx.MockTransport``: the routes the client calls, the
answers (and failures) a test sets up, and every request kept for the test to look at."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

TOKEN = "tok-123"
EXEC_ID = "e-1"


def execution(status: str = "completed", **fields: Any) -> dict[str, Any]:
    trail = {"queued": ["queued"], "running": ["queued", "running"]}
    history = [
        {"status": s, "at": "2026-12-01T10:00:00Z"}
        for s in trail.get(status, ["queued", "running", status])
    ]
    body: dict[str, Any] = {
        "execution_id": EXEC_ID,
        "status": status,
        "language": "python",
        "language_version": "3.11",
        "stdout": "hello\n",
        "stderr": "",
        "exit_code": 0,
        "resource_usage": {"cpu_time_ms": 12.5, "wall_time_ms": 40.0, "peak_memory_kb": 3072},
        "created_at": "2026-12-01T10:00:00Z",
        "trace_id": "ab" * 16,
        "status_history": history,
    }
    body.update(fields)
    return body


def sse(*statuses: str, keep_alive: bool = True) -> str:
    parts = [": keep-alive\n\n"] if keep_alive else []
    for s in statuses:
        data = json.dumps({"execution_id": EXEC_ID, "status": s, "at": "2026-12-01T10:00:00Z"})
        parts.append(f"event: status\ndata: {data}\n\n")
    return "".join(parts)


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeApi:
    """Routes by ``METHOD /path``; a test replaces any answer with ``on``."""

    requests: list[httpx.Request] = field(default_factory=list)
    routes: dict[str, Handler] = field(default_factory=dict)
    polls: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.on("POST /api/v1/auth/login", 200, {"access_token": TOKEN, "expires_in": 3600})
        self.on("POST /api/v1/auth/register", 202, {"username": "alice", "detail": "ok"})
        self.on(
            "GET /api/v1/runtimes",
            200,
            [{"language": "python", "versions": ["3.11"], "default_version": "3.11"}],
        )
        self.on("POST /api/v1/execute", 202, {"execution_id": EXEC_ID, "status": "queued"})
        self.routes[f"GET /api/v1/executions/{EXEC_ID}"] = self._poll
        self.polls = [execution()]
        self.on_sse(sse("queued", "running", "completed"))

    def on(
        self,
        route: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, json=body, headers=headers)

        self.routes[route] = answer

    def on_sse(self, text: str) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, text=text, headers={"Content-Type": "text/event-stream"})

        self.routes[f"GET /api/v1/executions/{EXEC_ID}/events"] = answer

    def fail(self, route: str, error: Exception) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            raise error

        self.routes[route] = answer

    def _poll(self, request: httpx.Request) -> httpx.Response:
        body = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        return httpx.Response(200, json=body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get(f"{request.method} {request.url.path}")
        if handler is None:
            return httpx.Response(404, json={"detail": "Not Found"})
        return handler(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def sent(self, route: str) -> list[httpx.Request]:
        method, path = route.split(" ", 1)
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def body(self, route: str) -> Any:
        return json.loads(self.sent(route)[-1].content)
