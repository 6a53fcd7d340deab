"""The account directory against the real FerretDB: it reads what the api writes to ``users``
(``role``, ``disabled``, ``token_generation``; older accounts without the last two), sees a
change once its cache entry is older than the TTL, and fails closed when Mongo is away."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_auth import (
    COLLECTION,
    AccountStatus,
    AccountStoreUnavailableError,
    MongoAccountDirectory,
)

STACK = local_stack()


@pytest.fixture
async def users() -> AsyncIterator[AsyncCollection[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    database = f"auth_acct_{uuid.uuid4().hex[:10]}"
    try:
        yield client[database][COLLECTION]
    finally:
        await client.drop_database(database)
        await client.close()


def _api_doc(user_id: str, role: str, **fields: Any) -> dict[str, Any]:
    """A user as the api stores it (services/api adapters/mongo_users.py)."""
    return {
        "_id": user_id,
        "username": user_id,
        "skeleton": user_id,
        "role": role,
        "password_hash": "$argon2id$...",
        "created_at": datetime.now(UTC),
        **fields,
    }


async def test_reads_the_api_fields_and_sees_a_change_after_the_ttl(
    users: AsyncCollection[dict[str, Any]],
) -> None:
    await users.insert_one(_api_doc("boss", "admin", disabled=False, token_generation=0))
    await users.insert_one(_api_doc("legacy", "admin"))  # stored before the two fields existed
    directory = MongoAccountDirectory(users, ttl_s=0.3)
    assert await directory.status("boss") == AccountStatus("admin", False, 0)
    assert await directory.status("legacy") == AccountStatus("admin", False, 0)
    assert await directory.status("nobody") is None

    await users.update_one(
        {"_id": "boss"}, {"$set": {"role": "user"}, "$inc": {"token_generation": 1}}
    )

    async def demoted() -> AccountStatus | None:
        status = await directory.status("boss")
        return status if status is not None and status.role == "user" else None

    assert await eventually(demoted, timeout_s=3, interval_s=0.05, what="demotion seen") == (
        AccountStatus("user", False, 1)
    )
    await users.delete_one({"_id": "legacy"})

    async def gone() -> bool:
        return await directory.status("legacy") is None

    assert await eventually(gone, timeout_s=3, interval_s=0.05, what="deletion seen")


async def test_an_unreachable_server_fails_closed() -> None:
    dead: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:1", serverSelectionTimeoutMS=200, connect=False
    )
    try:
        directory = MongoAccountDirectory(dead["x"][COLLECTION])
        with pytest.raises(AccountStoreUnavailableError, match="account store unavailable"):
            await directory.status("boss")
    finally:
        await dead.close()
