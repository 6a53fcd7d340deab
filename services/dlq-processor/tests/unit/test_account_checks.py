"""A token opens the dead-letter API only while its account is, now, an enabled admin whose
tokens were not revoked; the account directory's cache bounds how long a change takes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from integr8scode_dlq_processor.adapters.mongo_accounts import MongoAccountDirectory
from integr8scode_dlq_processor.domain.errors import StoreUnavailable
from integr8scode_dlq_processor.domain.ports import AccountStatus

if TYPE_CHECKING:
    from conftest import AdminHarness

LIST = "/api/v1/dlq/messages"


def _status(role: str = "admin", *, disabled: bool = False, generation: int = 0) -> AccountStatus:
    return AccountStatus(role=role, disabled=disabled, token_generation=generation)


def test_an_admin_account_as_the_token_says_passes(admin: AdminHarness) -> None:
    assert admin.client.get(LIST, headers=admin.headers()).status_code == 200


def test_a_demoted_admin_is_403_though_its_token_says_admin(admin: AdminHarness) -> None:
    admin.accounts.by_id["user-admin"] = _status("user")
    response = admin.client.get(LIST, headers=admin.headers())
    assert response.status_code == 403


def test_a_token_older_than_the_accounts_last_change_is_401(admin: AdminHarness) -> None:
    admin.accounts.by_id["user-admin"] = _status(generation=2)
    old = admin.client.get(LIST, headers=admin.headers(gen=1))
    assert old.status_code == 401
    assert "revoked" in old.json()["detail"]
    assert old.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    legacy = admin.client.get(LIST, headers=admin.headers())  # no gen claim: generation 0
    assert legacy.status_code == 401
    assert admin.client.get(LIST, headers=admin.headers(gen=2)).status_code == 200


def test_a_deleted_or_disabled_account_is_401(admin: AdminHarness) -> None:
    admin.accounts.by_id["user-admin"] = _status(disabled=True)
    disabled = admin.client.get(LIST, headers=admin.headers())
    assert (disabled.status_code, disabled.json()["detail"]) == (401, "this account is disabled")
    del admin.accounts.by_id["user-admin"]
    deleted = admin.client.get(LIST, headers=admin.headers())
    assert deleted.status_code == 401
    assert "no longer exists" in deleted.json()["detail"]


def test_account_store_down_fails_closed_with_503(admin: AdminHarness) -> None:
    admin.accounts.down = True
    response = admin.client.get(LIST, headers=admin.headers())
    assert response.status_code == 503
    assert "account store unavailable" in response.json()["detail"]


def test_a_non_admin_token_is_refused_without_reading_the_account(admin: AdminHarness) -> None:
    assert admin.client.get(LIST, headers=admin.headers("user")).status_code == 403
    assert admin.accounts.reads == 0


def test_a_non_integer_generation_claim_is_401(admin: AdminHarness) -> None:
    for gen in ("1", 1.5, True):
        response = admin.client.get(LIST, headers=admin.headers(gen=gen))
        assert response.status_code == 401, gen


class FakeCollection:
    """``find_one`` of a users collection; counts reads; ``error`` makes it raise."""

    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        self.docs = docs
        self.reads = 0
        self.error: Exception | None = None

    async def find_one(self, query: dict[str, Any], projection: dict[str, int]) -> Any:
        self.reads += 1
        if self.error is not None:
            raise self.error
        doc = self.docs.get(query["_id"])
        return None if doc is None else {k: v for k, v in doc.items() if k in projection}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_directory_caches_for_its_ttl_then_reads_again() -> None:
    users = FakeCollection({"a": {"role": "admin", "password_hash": "x"}})
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


async def test_the_directory_fails_closed_when_mongo_is_down() -> None:
    users = FakeCollection({"a": {"role": "admin"}})
    clock = Clock()
    directory = MongoAccountDirectory(users, ttl_s=2.0, clock=clock)  # type: ignore[arg-type]
    await directory.status("a")
    users.error = ServerSelectionTimeoutError("down")
    clock.now += 3
    with pytest.raises(StoreUnavailable):  # never the stale entry
        await directory.status("a")
