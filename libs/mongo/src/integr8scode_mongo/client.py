"""The one way a service builds its Mongo client, and the readiness check that pings it.

The client connects lazily: a service must start (and answer ``/health/live``) while the server
is down, and report it through ``/health/ready`` until it is back. Dates come back timezone-aware
(UTC), as every store writes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient

from integr8scode_mongo.settings import MongoSettings

MongoClient = AsyncMongoClient[dict[str, Any]]


def mongo_client(settings: MongoSettings) -> MongoClient:
    """A client for ``settings.url`` that connects on first use, gives up server selection after
    ``settings.server_selection_timeout_ms`` and reads dates as aware UTC datetimes. Built in
    the composition root; closed by its lifespan."""
    client: MongoClient = AsyncMongoClient(
        settings.url,
        serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
        tz_aware=True,
        connect=False,
    )
    return client


def mongo_ping(client: MongoClient) -> Callable[[], Awaitable[bool]]:
    """The readiness check of ``client``: a coroutine function answering True when the server
    answers ``ping`` (it raises, like the driver, when it doesn't). A plain async check, so the
    composition root names it in whatever health probe it builds."""

    async def ping() -> bool:
        reply = await client.admin.command("ping")
        return bool(reply.get("ok"))

    return ping
