"""The wiring of the shared admin check (``integr8scode_auth``): the dead-letter API answers the
lib's verdicts with this service's status codes, challenges and messages. The rules themselves
are tested in libs/auth."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integr8scode_auth import AccountStatus

if TYPE_CHECKING:
    from conftest import AdminHarness

LIST = "/api/v1/dlq/messages"
ADMIN_ONLY = "the dead-letter API needs the admin role"  # its message since the API began
REVOKED_CHALLENGE = 'Bearer error="invalid_token"'


def _status(role: str = "admin", *, disabled: bool = False, generation: int = 0) -> AccountStatus:
    return AccountStatus(role=role, disabled=disabled, token_generation=generation)


def test_an_admin_account_as_the_token_says_passes(admin: AdminHarness) -> None:
    assert admin.client.get(LIST, headers=admin.headers()).status_code == 200
    assert admin.accounts.reads == 1


def test_a_demoted_admin_is_403_naming_this_api(admin: AdminHarness) -> None:
    admin.accounts.by_id["user-admin"] = _status("user")
    response = admin.client.get(LIST, headers=admin.headers())
    assert (response.status_code, response.json()) == (403, {"detail": ADMIN_ONLY})


def test_a_non_admin_token_is_403_without_reading_the_account(admin: AdminHarness) -> None:
    response = admin.client.get(LIST, headers=admin.headers("user"))
    assert (response.status_code, response.json()) == (403, {"detail": ADMIN_ONLY})
    assert admin.accounts.reads == 0


def test_a_token_older_than_the_accounts_last_change_is_401(admin: AdminHarness) -> None:
    admin.accounts.by_id["user-admin"] = _status(generation=2)
    old = admin.client.get(LIST, headers=admin.headers(gen=1))
    assert old.status_code == 401
    assert old.json()["detail"].startswith("this token was revoked")
    assert old.headers["WWW-Authenticate"] == REVOKED_CHALLENGE
    legacy = admin.client.get(LIST, headers=admin.headers())  # no gen claim: generation 0
    assert legacy.status_code == 401
    assert admin.client.get(LIST, headers=admin.headers(gen=2)).status_code == 200


def test_a_deleted_or_disabled_account_is_401(admin: AdminHarness) -> None:
    admin.accounts.by_id["user-admin"] = _status(disabled=True)
    disabled = admin.client.get(LIST, headers=admin.headers())
    assert (disabled.status_code, disabled.json()["detail"]) == (401, "this account is disabled")
    assert disabled.headers["WWW-Authenticate"] == REVOKED_CHALLENGE
    del admin.accounts.by_id["user-admin"]
    deleted = admin.client.get(LIST, headers=admin.headers())
    assert (deleted.status_code, deleted.json()["detail"]) == (
        401,
        "the account of this token no longer exists",
    )


def test_account_store_down_fails_closed_with_503(admin: AdminHarness) -> None:
    admin.accounts.down = True
    response = admin.client.get(LIST, headers=admin.headers())
    assert response.status_code == 503
    assert response.json()["detail"] == "account store unavailable: test"
    assert response.headers["Retry-After"] == "1"


def test_a_non_integer_generation_claim_is_401(admin: AdminHarness) -> None:
    for gen in ("1", 1.5, True):
        response = admin.client.get(LIST, headers=admin.headers(gen=gen))
        assert response.status_code == 401, gen
        assert response.json()["detail"] == "invalid access token"
