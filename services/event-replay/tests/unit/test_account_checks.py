"""The wiring of the shared admin check (``integr8scode_auth``): the replay API answers the
lib's verdicts with this service's status codes, challenges and messages. The rules themselves
are tested in libs/auth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from integr8scode_auth import AccountStatus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest import Harness

SESSIONS = "/api/v1/replay/sessions"
SUB = "admin-1"
ADMIN_ONLY = "replay sessions need the admin role"  # its message since the API began
REVOKED_CHALLENGE = 'Bearer error="invalid_token"'


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


async def test_a_demoted_admin_is_403_naming_this_api(
    harness: Harness, http: httpx.AsyncClient, make_bearer: Any
) -> None:
    harness.accounts.by_id[SUB] = _status("user")
    response = await _get(http, make_bearer)
    assert (response.status_code, response.json()) == (403, {"detail": ADMIN_ONLY})


async def test_a_revoked_token_is_401_and_a_fresh_one_passes(
    harness: Harness, http: httpx.AsyncClient, make_bearer: Any
) -> None:
    harness.accounts.by_id[SUB] = _status(generation=1)
    old = await _get(http, make_bearer)  # no gen claim: generation 0
    assert old.status_code == 401
    assert old.json()["detail"].startswith("this token was revoked")
    assert old.headers["WWW-Authenticate"] == REVOKED_CHALLENGE
    assert (await _get(http, make_bearer, gen=1)).status_code == 200


async def test_a_deleted_or_disabled_account_is_401(
    harness: Harness, http: httpx.AsyncClient, make_bearer: Any
) -> None:
    harness.accounts.by_id[SUB] = _status(disabled=True)
    disabled = await _get(http, make_bearer)
    assert (disabled.status_code, disabled.json()["detail"]) == (401, "this account is disabled")
    harness.accounts.by_id[SUB] = None
    deleted = await _get(http, make_bearer)
    assert (deleted.status_code, deleted.json()["detail"]) == (
        401,
        "the account of this token no longer exists",
    )
    assert deleted.headers["WWW-Authenticate"] == REVOKED_CHALLENGE


async def test_account_store_down_fails_closed_with_503(
    harness: Harness, http: httpx.AsyncClient, make_bearer: Any
) -> None:
    harness.accounts.down = True
    response = await _get(http, make_bearer)
    assert response.status_code == 503
    # every 503 of this API says the same (errors.py), whichever store is down
    assert response.json() == {"detail": "the session store is unavailable; try again"}
    assert response.headers["Retry-After"] == "1"
