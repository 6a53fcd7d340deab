"""Accounts in the Mongo-wire store: unique names, reads, updates, a dead server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pymongo import AsyncMongoClient

from integr8scode_api.adapters.mongo_users import COLLECTION, MongoUserRepository
from integr8scode_api.domain.errors import ConflictError, DependencyUnavailableError
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

    with pytest.raises(ConflictError, match="already taken"):
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
        with pytest.raises(DependencyUnavailableError, match="user store unavailable"):
            await repo.by_username("anyone")
        with pytest.raises(DependencyUnavailableError):
            await repo.add(User.new("anyone", "h"))
    finally:
        await dead.close()


async def test_look_alikes_collide_on_the_skeleton_index(live: LiveStack) -> None:
    repo = MongoUserRepository(live.mongo[live.database][COLLECTION])
    await repo.add(User.new("bob.smith", "h"))
    for twin in ("b0b.smith", "bob.srnith"):
        with pytest.raises(ConflictError, match="looks like"):
            await repo.add(User.new(twin, "h"))
    assert await live.mongo[live.database][COLLECTION].count_documents({}) == 1


async def test_concurrent_look_alikes_make_one_account(live: LiveStack) -> None:
    repo = MongoUserRepository(live.mongo[live.database][COLLECTION])
    await repo.ensure_indexes()
    names = ["walter", "vvalter", "wa1ter", "WALTER", "vva1ter"]
    results = await asyncio.gather(
        *(repo.add(User.new(n.lower(), "h")) for n in names), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ConflictError) for r in results if r is not None)


async def test_accounts_stored_before_skeletons_get_one_and_keep_working(live: LiveStack) -> None:
    users = live.mongo[live.database][COLLECTION]
    old = datetime(2025, 1, 1, tzinfo=UTC)
    # as the api stored them before: no skeleton, disabled or token_generation; two twins
    for i, name in enumerate(["paul", "pau1", "zoe"]):
        await users.insert_one(
            {
                "_id": f"old{i}",
                "username": name,
                "role": "user",
                "password_hash": "h",
                "created_at": old + timedelta(seconds=i),
            }
        )
    repo = MongoUserRepository(users)
    await repo.ensure_indexes()
    skeletons = {d["_id"]: d["skeleton"] async for d in users.find({}, {"skeleton": 1})}
    assert skeletons == {"old0": "paul", "old1": "paul#old1", "old2": "zoe"}
    twin = await repo.get("old1")
    assert twin is not None
    assert (twin.username, twin.disabled, twin.token_generation) == ("pau1", False, 0)
    with pytest.raises(ConflictError):  # the older one's skeleton blocks new look-alikes
        await repo.add(User.new("pau1", "h"))
    with pytest.raises(ConflictError):
        await repo.add(User.new("zoe", "h"))


async def test_update_access_delete_page_and_count_admins(live: LiveStack) -> None:
    repo = MongoUserRepository(live.mongo[live.database][COLLECTION])
    admin = User.new("boss", "h", Role.ADMIN)
    alice = User.new("alice", "h").model_copy(
        update={"created_at": admin.created_at + timedelta(seconds=1)}
    )
    await repo.add(admin)
    await repo.add(alice)
    assert await repo.count_active_admins() == 1
    demoted = await repo.update_access(admin.id, role=Role.USER)
    assert demoted is not None
    assert (demoted.role, demoted.token_generation) == (Role.USER, 1)
    assert await repo.count_active_admins() == 0
    promoted = await repo.update_access(alice.id, role=Role.ADMIN, disabled=True)
    assert promoted is not None
    assert (promoted.role, promoted.disabled, promoted.token_generation) == (Role.ADMIN, True, 1)
    assert await repo.count_active_admins() == 0  # disabled admins don't count
    revoked = await repo.update_access(alice.id)
    assert revoked is not None
    assert (revoked.disabled, revoked.token_generation) == (True, 2)
    assert await repo.update_access("missing") is None
    # the fields the dlq-processor and event-replay read, under these names
    raw = await live.mongo[live.database][COLLECTION].find_one({"_id": alice.id})
    assert raw is not None
    assert (raw["role"], raw["disabled"], raw["token_generation"]) == ("admin", True, 2)

    assert [u.username for u in await repo.page(offset=0, limit=10)] == ["alice", "boss"]
    assert [u.username for u in await repo.page(offset=1, limit=10)] == ["boss"]
    assert [u.id for u in await repo.page(offset=0, limit=10, role=Role.ADMIN)] == [alice.id]

    assert await repo.delete(admin.id)
    assert not await repo.delete(admin.id)
    assert await repo.get(admin.id) is None
    await repo.add(User.new("boss", "h"))  # the name (and its skeleton) are free again


async def test_the_account_cache_answers_reads_and_this_process_writes_drop_it(
    live: LiveStack,
) -> None:
    collection = live.mongo[live.database][COLLECTION]
    now = [0.0]
    repo = MongoUserRepository(collection, cache_ttl_s=2.0, clock=lambda: now[0])
    user = User.new("cached", "h")
    await repo.add(user)
    assert await repo.get(user.id) == user

    # A change made behind the repository's back (another api replica) is seen only once
    # the entry expires...
    await collection.update_one({"_id": user.id}, {"$set": {"disabled": True}})
    cached = await repo.get(user.id)
    assert cached is not None
    assert not cached.disabled
    now[0] = 2.5
    fresh = await repo.get(user.id)
    assert fresh is not None
    assert fresh.disabled

    # ...while one made through it is seen by the very next read.
    changed = await repo.update_access(user.id, role=Role.ADMIN, disabled=False)
    assert changed is not None
    assert await repo.get(user.id) == changed
    assert await repo.delete(user.id)
    assert await repo.get(user.id) is None


async def test_a_read_that_overlaps_a_write_is_not_cached(live: LiveStack) -> None:
    collection = live.mongo[live.database][COLLECTION]
    repo = MongoUserRepository(collection, cache_ttl_s=30.0)
    user = User.new("overlap", "h")
    await repo.add(user)
    # Start a read, and change the account before the read's answer is cached.
    read = asyncio.ensure_future(repo.get(user.id))
    changed = await repo.update_access(user.id, disabled=True)
    await read
    assert changed is not None
    assert changed.disabled
    now_read = await repo.get(user.id)
    assert now_read is not None
    assert now_read.disabled


async def test_without_a_ttl_every_read_goes_to_the_store(live: LiveStack) -> None:
    collection = live.mongo[live.database][COLLECTION]
    repo = MongoUserRepository(collection)
    user = User.new("uncached", "h")
    await repo.add(user)
    assert await repo.get(user.id) == user
    await collection.update_one({"_id": user.id}, {"$set": {"role": Role.ADMIN.value}})
    again = await repo.get(user.id)
    assert again is not None
    assert again.role is Role.ADMIN
