"""Accounts in the Mongo-wire store: unique names, reads, updates, a dead server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pymongo import AsyncMongoClient

from integr8scode_api.adapters.mongo_users import COLLECTION, MongoUserRepository
from integr8scode_api.domain.errors import Conflict, DependencyUnavailable
from integr8scode_api.domain.users import Role, User

if TYPE_CHECKING:
    from conftest import LiveStack


async def test_add_get_update_and_a_duplicate_name(live: LiveStack) -> None:
    repo = MongoUserRepository(live.mongo[live.database][COLLECTION])
    user = User.new("grace", "hash-1", Role.ADMIN)
    await repo.add(user)
    assert await repo.get(user.id) == user
    assert await repo.by_username("grace") == user
    assert await repo.get("missing") is None

    with pytest.raises(Conflict, match="already taken"):
        await repo.add(User.new("grace", "hash-2"))

    await repo.set_password_hash(user.id, "hash-3")
    stored = await repo.get(user.id)
    assert stored is not None
    assert stored.password_hash == "hash-3"


async def test_an_unreachable_server_is_dependency_unavailable() -> None:
    dead: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:1", serverSelectionTimeoutMS=200, connect=False
    )
    try:
        repo = MongoUserRepository(dead["x"][COLLECTION])
        with pytest.raises(DependencyUnavailable, match="user store unavailable"):
            await repo.by_username("anyone")
        with pytest.raises(DependencyUnavailable):
            await repo.add(User.new("anyone", "h"))
    finally:
        await dead.close()
