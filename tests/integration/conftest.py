"""Fixtures of the cross-service integration tests (one service's adapters write, another's
read) against the real local stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.stack import local_stack


@pytest.fixture
async def db() -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A database of the test's own on the Mongo-wire server, dropped afterwards."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        local_stack().mongo_url, serverSelectionTimeoutMS=3000, tz_aware=True
    )
    name = f"it_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()
