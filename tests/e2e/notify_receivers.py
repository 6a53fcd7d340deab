"""Local HTTP receivers for notification tests: a webhook endpoint and a stand-in for Slack's
incoming-webhook protocol (POST JSON, answer 200 ``ok``). Each listens on 127.0.0.1 on a port
of its own, records every request, and answers from a script (the last answer repeats).

Used by the end-to-end tests and by the notifier's integration tests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.polling import eventually


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class RecordingReceiver:
    """``async with RecordingReceiver() as receiver:`` then POST to ``receiver.url(path)``."""

    answers: Sequence[Answer] = (Answer(),)
    # Count requests per execution (the webhook body's ``execution.execution_id``) instead of
    # overall when choosing the answer: each execution gets the same story.
    per_execution: bool = False
    requests: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def url(self, path: str = "/hook") -> str:
        return f"{self.base_url}{path}"

    def answer_with(self, *answers: Answer) -> None:
        self.answers = answers

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Received(request.path_qs, dict(request.headers), body, time.monotonic())
        )
        answer = self.answers[min(self._count_for(self.requests[-1]) - 1, len(self.answers) - 1)]
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)  # a slow receiver, as the test asks
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)

    def _count_for(self, received: Received) -> int:
        if not self.per_execution:
            return len(self.requests)
        execution = _execution_of(received)
        return sum(1 for r in self.requests if _execution_of(r) == execution)

    async def __aenter__(self) -> RecordingReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = site.port
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout_s: float = 60) -> list[Received]:
        """The first ``count`` requests, once that many arrived."""

        async def arrived() -> list[Received] | None:
            return self.requests[:count] if len(self.requests) >= count else None

        return await eventually(arrived, timeout_s=timeout_s, what=f"{count} request(s)")


async def holds_for(
    probe: Callable[[], Awaitable[bool]], *, duration_s: float, interval_s: float = 0.25
) -> None:
    """Check ``probe`` repeatedly for ``duration_s``; fail as soon as it does not hold (the
    counterpart of ``eventually`` for "nothing more arrives")."""
    deadline = time.monotonic() + duration_s
    checks = 0
    while True:
        checks += 1
        assert await probe(), f"condition stopped holding after {checks} check(s)"
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval_s)


def _execution_of(received: Received) -> str | None:
    try:
        body = received.json()
    except ValueError:
        return None
    execution = body.get("execution") if isinstance(body, dict) else None
    return execution.get("execution_id") if isinstance(execution, dict) else None
