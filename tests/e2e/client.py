"""A small client of the public API for the end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()
API = STACK.services["integr8scode-backend"]
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}


@dataclass
class ApiUser:
    username: str
    password: str
    token: str
    http: httpx.AsyncClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def execute(self, script: str, language: str = "python", **body: Any) -> httpx.Response:
        headers = {**self.headers, **body.pop("headers", {})}
        return await self.http.post(
            "/api/v1/execute",
            json={"script": script, "language": language, **body},
            headers=headers,
        )

    async def get(self, execution_id: str) -> httpx.Response:
        return await self.http.get(f"/api/v1/executions/{execution_id}", headers=self.headers)

    async def wait_terminal(self, execution_id: str, timeout_s: float = 60) -> dict[str, Any]:
        async def terminal() -> dict[str, Any] | None:
            response = await self.get(execution_id)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body if body["status"] in TERMINAL else None

        return await eventually(terminal, timeout_s=timeout_s, what=f"{execution_id} terminal")

    async def run(self, script: str, language: str = "python", **body: Any) -> dict[str, Any]:
        """Submit and wait for the terminal status. A 429 is answered as a polite client does:
        after the ``Retry-After`` the API sent, within a minute (tests that check the limit
        itself call ``execute``)."""
        deadline = time.monotonic() + 60
        response = await self.execute(script, language, **body)
        while response.status_code == 429 and time.monotonic() < deadline:
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            response = await self.execute(script, language, **body)
        assert response.status_code == 202, response.text
        return await self.wait_terminal(response.json()["execution_id"])

    async def sse_statuses(self, execution_id: str) -> list[str]:
        statuses: list[str] = []
        async with self.http.stream(
            "GET",
            f"/api/v1/executions/{execution_id}/events",
            headers=self.headers,
            timeout=httpx.Timeout(60),
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    statuses.append(json.loads(line[6:])["status"])
        return statuses


async def new_user(http: httpx.AsyncClient, prefix: str = "e2e") -> ApiUser:
    username = f"{prefix}_{uuid.uuid4().hex[:10]}"
    password = f"pw-{uuid.uuid4().hex}"
    registered = await http.post(
        "/api/v1/auth/register", json={"username": username, "password": password}
    )
    assert registered.status_code == 202, registered.text
    login = await http.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert login.status_code == 200, login.text
    return ApiUser(username, password, login.json()["access_token"], http)
