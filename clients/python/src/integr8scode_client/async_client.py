"""The async client of the public API (``/api/v1``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from types import TracebackType
from typing import Any

import httpx
from pydantic import TypeAdapter

from integr8scode_client.errors import (
    NotSupported,
    Unavailable,
    WaitTimeout,
    error_from_response,
)
from integr8scode_client.execute_request import ExecuteRequest
from integr8scode_client.models import (
    BatchItem,
    CancelAccepted,
    Execution,
    ExecutionPage,
    Me,
    NotificationSettings,
    Registration,
    Runtime,
    StatusEvent,
    Submitted,
    Timeline,
    Token,
)
from integr8scode_client.sse import SseParser

DEFAULT_URL = "http://127.0.0.1:8000"
StatusCallback = Callable[[str], None]
_RUNTIMES = TypeAdapter(list[Runtime])
_BATCH = TypeAdapter(list[BatchItem])
_UNSET: Any = object()


class AsyncClient:
    """A session with one API: ``login`` (or a ``token``) once, then every call carries it.

    Use it as ``async with AsyncClient(url) as api: ...``; every failure is an
    ``integr8scode_client.errors.ApiError`` (``Unavailable`` when the API can't be reached).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout_s: float = 30,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- transport ---------------------------------------------------------------------

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def _unreachable(self, exc: httpx.TransportError) -> Unavailable:
        if isinstance(exc, httpx.TimeoutException):
            return Unavailable(0, f"no answer from the API at {self.base_url} in time")
        reason = str(exc) or type(exc).__name__
        return Unavailable(0, f"cannot reach the API at {self.base_url} ({reason})")

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method, path, json=body, params=params, headers=self._headers(headers)
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    # -- accounts ----------------------------------------------------------------------

    async def register(self, username: str, password: str) -> Registration:
        """Ask for an account; the answer is the same whether the name was free or not (a
        taken name shows at login)."""
        body = {"username": username, "password": password}
        response = await self._send("POST", "/api/v1/auth/register", body=body)
        return Registration.model_validate(response.json())

    async def login(self, username: str, password: str) -> Token:
        """Exchange credentials for a token; this client uses it from now on."""
        body = {"username": username, "password": password}
        response = await self._send("POST", "/api/v1/auth/login", body=body)
        token = Token.model_validate(response.json())
        self.token = token.access_token
        return token

    async def me(self) -> Me:
        return Me.model_validate((await self._send("GET", "/api/v1/auth/me")).json())

    # -- executions --------------------------------------------------------------------

    async def runtimes(self) -> list[Runtime]:
        return _RUNTIMES.validate_python((await self._send("GET", "/api/v1/runtimes")).json())

    async def execute(
        self,
        request: ExecuteRequest,
        *,
        idempotency_key: str | None = None,
        wait: bool = False,
    ) -> Submitted:
        """Queue a run. With ``wait`` the API holds the answer a while (``?wait=true``) and
        ``result`` is the whole result when the run ended in that time."""
        params = {}
        if request.needs_base64:
            params["base64"] = "true"
        if wait:
            params["wait"] = "true"
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = await self._send(
            "POST", "/api/v1/execute", body=request.as_json(), params=params, headers=headers
        )
        data = response.json()
        if response.status_code == 200 and "language" in data:
            result = Execution.model_validate(data)
            return Submitted(execution_id=result.execution_id, status=result.status, result=result)
        return Submitted.model_validate(data)

    async def get(self, execution_id: str, *, base64: bool = False) -> Execution:
        """One execution; with ``base64`` its stdout/stderr are the exact bytes (see
        ``Execution.stdout_bytes``)."""
        params = {"base64": "true"} if base64 else None
        response = await self._send("GET", f"/api/v1/executions/{execution_id}", params=params)
        return Execution.model_validate(response.json())

    async def list_executions(self, *, limit: int = 20, offset: int = 0) -> ExecutionPage:
        """The caller's executions, newest first."""
        params = {"limit": str(limit), "offset": str(offset)}
        response = await self._send("GET", "/api/v1/executions", params=params)
        return ExecutionPage.model_validate(response.json())

    async def get_many(self, execution_ids: Sequence[str]) -> list[Execution]:
        """Several executions in one request (``?ids=``); an id that is not one of the
        caller's executions is left out. ``NotSupported`` when the API ignores the parameter
        (it then answers a page of other executions)."""
        params = {"ids": ",".join(execution_ids)}
        data = (await self._send("GET", "/api/v1/executions", params=params)).json()
        items = data.get("items", []) if isinstance(data, dict) else data
        found = [Execution.model_validate(item) for item in items]
        if any(e.execution_id not in execution_ids for e in found):
            raise NotSupported(200, "this API does not support GET /api/v1/executions?ids=")
        return found

    async def batch(self, requests: Sequence[ExecuteRequest]) -> list[BatchItem]:
        """Queue several runs in one request: one entry per request, in order (its id, or its
        own error). ``NotSupported`` on an API without batches."""
        if any(r.needs_base64 for r in requests):
            params = {"base64": "true"}
            bodies = [ExecuteRequest(**{**vars(r), "base64": True}).as_json() for r in requests]
        else:
            params, bodies = {}, [r.as_json() for r in requests]
        response = await self._send(
            "POST", "/api/v1/executions/batch", body={"submissions": bodies}, params=params
        )
        data = response.json()
        items = data if isinstance(data, list) else data.get("items", [])
        return _BATCH.validate_python(items)

    async def cancel(self, execution_id: str) -> CancelAccepted:
        response = await self._send("POST", f"/api/v1/executions/{execution_id}/cancel")
        return CancelAccepted.model_validate(response.json())

    async def timeline(self, execution_id: str) -> Timeline:
        """Where the time went: the phases of the execution's trace (the timeline API)."""
        response = await self._send("GET", f"/api/v1/executions/{execution_id}/timeline")
        return Timeline.model_validate(response.json())

    async def events(
        self, execution_id: str, *, idle_timeout_s: float = 60
    ) -> AsyncGenerator[StatusEvent, None]:
        """The execution's status changes as server-sent events: every one so far, then each
        as it happens; the stream ends at a terminal status."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=idle_timeout_s)
        request = self._http.build_request(
            "GET",
            f"/api/v1/executions/{execution_id}/events",
            headers=self._headers({"Accept": "text/event-stream"}),
            timeout=timeout,
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        try:
            if response.status_code >= 400:
                await response.aread()
                raise error_from_response(response)
            parser = SseParser()
            async for line in response.aiter_lines():
                event = parser.feed(line)
                if event is not None and event.event == "status":
                    yield StatusEvent.model_validate(json.loads(event.data))
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        finally:
            await response.aclose()

    async def wait(
        self,
        execution_id: str,
        *,
        timeout_s: float = 300,
        on_status: StatusCallback | None = None,
        poll_interval_s: float = 0.5,
        base64: bool = False,
    ) -> Execution:
        """The execution once it ended: follows its server-sent events and, should the stream
        fail or end early, polls ``GET`` until the end or ``timeout_s`` (``WaitTimeout``).
        ``on_status`` hears each status once, in order."""
        deadline = time.monotonic() + timeout_s
        seen: list[str] = []

        def report(status: str) -> None:
            if status not in seen:
                seen.append(status)
                if on_status is not None:
                    on_status(status)

        try:
            async with asyncio.timeout(timeout_s):
                async for event in self.events(execution_id):
                    report(event.status)
                    if event.status in _TERMINAL:
                        break
        except TimeoutError:
            raise WaitTimeout(execution_id, seen[-1] if seen else None, timeout_s) from None
        except (Unavailable, NotSupported):
            pass  # the stream broke (or the API has none): polling takes over below
        while True:
            execution = await self.get(execution_id, base64=base64)
            for change in execution.status_history:
                report(change.status)
            report(execution.status)
            if execution.terminal:
                return execution
            if time.monotonic() + poll_interval_s > deadline:
                raise WaitTimeout(execution_id, execution.status, timeout_s)
            await asyncio.sleep(poll_interval_s)

    async def run(
        self,
        request: ExecuteRequest,
        *,
        timeout_s: float = 300,
        on_status: StatusCallback | None = None,
    ) -> Execution:
        """Submit and wait for the end."""
        submitted = await self.execute(request)
        return await self.wait(
            submitted.execution_id,
            timeout_s=timeout_s,
            on_status=on_status,
            base64=request.needs_base64,
        )

    # -- notifications -----------------------------------------------------------------

    async def notification_settings(self) -> NotificationSettings:
        response = await self._send("GET", "/api/v1/notifications/settings")
        return NotificationSettings.model_validate(response.json())

    async def set_notification_settings(
        self,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        slack_webhook_url: str | None = None,
    ) -> NotificationSettings:
        """Replace the settings: a channel left ``None`` is switched off."""
        body: dict[str, Any] = {"webhook": None, "slack": None}
        if webhook_url is not None:
            body["webhook"] = {"url": webhook_url, "secret": webhook_secret}
        if slack_webhook_url is not None:
            body["slack"] = {"webhook_url": slack_webhook_url}
        response = await self._send("PUT", "/api/v1/notifications/settings", body=body)
        return NotificationSettings.model_validate(response.json())


_TERMINAL = frozenset({"completed", "failed", "timed_out", "cancelled"})

__all__ = ["DEFAULT_URL", "AsyncClient", "StatusCallback"]
