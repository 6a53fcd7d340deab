"""``MongoAccountDirectory`` over a fake collection: the fields the api writes (older accounts
without ``disabled`` / ``token_generation``), the cache's TTL and size, failing closed."""

from __future__ import annotations

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from integr8scode_auth import AccountStatus, AccountStoreUnavailableError, MongoAccountDirectory

from .fakes import Clock, Collection


def _status(role: str = "admin", *, disabled: bool = False, generation: int = 0) -> AccountStatus:
    return AccountStatus(role=role, disabled=disabled, token_generation=generation)


async def test_the_directory_caches_for_its_ttl_then_reads_again() -> None:
    users = Collection({"a": {"role": "admin", "password_hash": "x"}})
    clock = Clock()
    directory = MongoAccountDirectory(users, ttl_s=2.0, clock=clock)  # type: ignore[arg-type]
    # stored before generations existed: enabled, generation 0
    assert await directory.status("a") == _status()
    users.docs["a"] = {"role": "user", "disabled": True, "token_generation": 3}
    clock.now += 1.9
    assert await directory.status("a") == _status()  # still cached
    clock.now += 0.2
    assert await directory.status("a") == _status("user", disabled=True, generation=3)
    assert users.reads == 2
    assert await directory.status("gone") is None  # absence is cached too
    assert await directory.status("gone") is None
    assert users.reads == 3


async def test_a_ttl_of_zero_reads_every_time() -> None:
    users = Collection({"a": {"role": "admin"}})
    directory = MongoAccountDirectory(users, ttl_s=0)  # type: ignore[arg-type]
    for _ in range(3):
        await directory.status("a")
    assert users.reads == 3


async def test_odd_stored_values_read_as_the_safe_default() -> None:
    users = Collection({"a": {"role": "admin", "token_generation": "7"}, "b": {}})
    directory = MongoAccountDirectory(users)  # type: ignore[arg-type]
    assert await directory.status("a") == _status()  # a non-integer generation: 0
    assert await directory.status("b") == _status("")  # no role: not an admin


async def test_the_directory_fails_closed_when_mongo_is_down() -> None:
    users = Collection({"a": {"role": "admin"}})
    clock = Clock()
    directory = MongoAccountDirectory(users, ttl_s=2.0, clock=clock)  # type: ignore[arg-type]
    await directory.status("a")
    users.error = ServerSelectionTimeoutError("down")
    clock.now += 3
    with pytest.raises(AccountStoreUnavailableError) as caught:  # never the stale entry
        await directory.status("a")
    assert caught.value.detail == (
        "account store unavailable: ServerSelectionTimeoutError; try again"
    )
