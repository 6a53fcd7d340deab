"""A token opens the replay API only while its account is, now, an enabled admin whose tokens
were not revoked; the account directory's cache bounds how long a change takes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from integr8scode_event_replay.adapters.mongo_accounts import MongoAccountDirectory
from integr8scode_event_replay.domain.errors import StoreUnavailableError
from integr8scode_event_replay.domain.ports import AccountStatus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest import Harness

SESSIONS = "/api/v1/replay/sessions"
SUB = "admin-1"


@pytest.fixture
async def http(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with await harness.client() as client:
        yield client


def _status(role: str = "admin", *, disabled: bool = False, generation: int = 0) -> AccountStatus:
    return AccountStatus(role=role, disabled=disabled, token_generation=generation)


async def _get(http: httpx.AsyncClient, make_bearer: Any, **claims: Any) -> httpx.Response:
    return await http.get(SESSIONS, headers=make_bearer(sub=SUB, **claims))


async def test_an_enabled_admin_passes(http: httpx.AsyncClient, make_bearer: Any) -> None:
    assert (await _get(http, make_bearer)).status_code == 200


async def test_a_demoted_admin_is_403(
    harness: Harness, http: httpx.AsyncClient, make_bearer: Any
) -> None:
    harness.accounts.by_id[SUB] = _status("user")
    assert (await _get(http, make_bearer)).status_code == 403


async def test_a_revoked_token_is_401_and_a_fresh_one_passes(
    harness: Harness, http: httpx.AsyncClient, make_bearer: Any
) -> None:
    harness.accounts.by_id[SUB] = _status(generation=1)
    old = await _get(http, make_bearer)  # no gen claim: generation 0
    assert old.status_code == 401
    assert "revoked" in old.json()["detail"]
    assert (await _get(http, make_bearer, gen=1)).status_code == 200


async def test_a_deleted_or_disabled_account_is_401(
    harness: Harness, http: httpx.AsyncClient, make_bearer: Any
) -> None:
    harness.accounts.by_id[SUB] = _status(disabled=True)
    assert (await _get(http, make_bearer)).json()["detail"] == "this account is disabled"
    harness.accounts.by_id[SUB] = None
    deleted = await _get(http, make_bearer)
    assert deleted.status_code == 401
    assert "no longer exists" in deleted.json()["detail"]


async def test_account_store_down_fails_closed_with_503(
    harness: Harness, http: httpx.AsyncClient, make_bearer: Any
) -> None:
    harness.accounts.down = True
    assert (await _get(http, make_bearer)).status_code == 503


class FakeCollection:
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


async def test_the_directory_caches_for_its_ttl_and_fails_closed() -> None:
    users = FakeCollection({"a": {"role": "admin"}})
    now = [0.0]
    directory = MongoAccountDirectory(users, ttl_s=2.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert await directory.status("a") == _status()
    users.docs["a"] = {"role": "admin", "token_generation": 4}
    now[0] = 1.5
    assert await directory.status("a") == _status()
    now[0] = 2.5
    assert await directory.status("a") == _status(generation=4)
    assert users.reads == 2
    users.error = ServerSelectionTimeoutError("down")
    now[0] = 5.0
    with pytest.raises(StoreUnavailableError):
        await directory.status("a")
