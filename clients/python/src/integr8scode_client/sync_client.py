"""The blocking client: the async client driven by an event loop of its own.

One loop for the client's whole life keeps its connection pool; it can't be used from inside a
running event loop (use ``AsyncClient`` there).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Sequence
from types import TracebackType

import httpx

from integr8scode_client.async_client import DEFAULT_URL, AsyncClient, StatusCallback
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


class Client:
    """Same calls as ``AsyncClient``, blocking. ``with Client(url) as api: ...``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout_s: float = 30,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._runner = asyncio.Runner()
        # The httpx client is made inside the loop it will run in.
        self._api = self._runner.run(_make(base_url, token, timeout_s, transport))

    @property
    def token(self) -> str | None:
        return self._api.token

    @token.setter
    def token(self, value: str | None) -> None:
        self._api.token = value

    @property
    def base_url(self) -> str:
        return self._api.base_url

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._runner.run(self._api.aclose())
        self._runner.close()

    def register(self, username: str, password: str) -> Registration:
        return self._runner.run(self._api.register(username, password))

    def login(self, username: str, password: str) -> Token:
        return self._runner.run(self._api.login(username, password))

    def me(self) -> Me:
        return self._runner.run(self._api.me())

    def runtimes(self) -> list[Runtime]:
        return self._runner.run(self._api.runtimes())

    def execute(
        self, request: ExecuteRequest, *, idempotency_key: str | None = None, wait: bool = False
    ) -> Submitted:
        return self._runner.run(
            self._api.execute(request, idempotency_key=idempotency_key, wait=wait)
        )

    def get(self, execution_id: str, *, base64: bool = False) -> Execution:
        return self._runner.run(self._api.get(execution_id, base64=base64))

    def list_executions(self, *, limit: int = 20, offset: int = 0) -> ExecutionPage:
        return self._runner.run(self._api.list_executions(limit=limit, offset=offset))

    def get_many(self, execution_ids: Sequence[str]) -> list[Execution]:
        return self._runner.run(self._api.get_many(execution_ids))

    def batch(self, requests: Sequence[ExecuteRequest]) -> list[BatchItem]:
        return self._runner.run(self._api.batch(requests))

    def cancel(self, execution_id: str) -> CancelAccepted:
        return self._runner.run(self._api.cancel(execution_id))

    def timeline(self, execution_id: str) -> Timeline:
        return self._runner.run(self._api.timeline(execution_id))

    def events(self, execution_id: str, *, idle_timeout_s: float = 60) -> Iterator[StatusEvent]:
        stream = self._api.events(execution_id, idle_timeout_s=idle_timeout_s)
        try:
            while True:
                try:
                    yield self._runner.run(_next(stream))
                except StopAsyncIteration:
                    return
        finally:
            self._runner.run(stream.aclose())

    def wait(
        self,
        execution_id: str,
        *,
        timeout_s: float = 300,
        on_status: StatusCallback | None = None,
        poll_interval_s: float = 0.5,
        base64: bool = False,
    ) -> Execution:
        return self._runner.run(
            self._api.wait(
                execution_id,
                timeout_s=timeout_s,
                on_status=on_status,
                poll_interval_s=poll_interval_s,
                base64=base64,
            )
        )

    def run(
        self,
        request: ExecuteRequest,
        *,
        timeout_s: float = 300,
        on_status: StatusCallback | None = None,
    ) -> Execution:
        return self._runner.run(self._api.run(request, timeout_s=timeout_s, on_status=on_status))

    def notification_settings(self) -> NotificationSettings:
        return self._runner.run(self._api.notification_settings())

    def set_notification_settings(
        self,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        slack_webhook_url: str | None = None,
    ) -> NotificationSettings:
        return self._runner.run(
            self._api.set_notification_settings(
                webhook_url=webhook_url,
                webhook_secret=webhook_secret,
                slack_webhook_url=slack_webhook_url,
            )
        )


async def _next(stream: AsyncGenerator[StatusEvent, None]) -> StatusEvent:
    return await anext(stream)


async def _make(
    base_url: str, token: str | None, timeout_s: float, transport: httpx.AsyncBaseTransport | None
) -> AsyncClient:
    return AsyncClient(base_url, token, timeout_s=timeout_s, transport=transport)


__all__ = ["Client"]
