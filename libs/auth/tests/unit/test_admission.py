"""``admit_admin`` / ``authorize_admin``: a token opens an admin API only while its account is,
now, an enabled admin whose tokens were not revoked; a token that doesn't say admin is refused
before any read; the store down fails closed."""

from __future__ import annotations

import pytest

from integr8scode_auth import (
    AccountStatus,
    AccountStoreUnavailableError,
    NotAdminError,
    Principal,
    TokenRejectedError,
    admit_admin,
    authorize_admin,
)

from .fakes import Directory

ADMIN = Principal("boss", "admin", token_generation=2)


def _account(role: str = "admin", *, disabled: bool = False, generation: int = 2) -> AccountStatus:
    return AccountStatus(role=role, disabled=disabled, token_generation=generation)


def test_an_enabled_admin_unchanged_since_the_token_is_admitted() -> None:
    assert admit_admin(ADMIN, _account()) is ADMIN
    assert admit_admin(ADMIN, _account(generation=1)) is ADMIN  # older account state: fine


@pytest.mark.parametrize(
    ("account", "detail"),
    [
        (None, "the account of this token no longer exists"),
        (_account(disabled=True), "this account is disabled"),
        (_account(generation=3), "this token was revoked"),
    ],
)
def test_a_token_that_no_longer_counts_is_rejected(
    account: AccountStatus | None, detail: str
) -> None:
    with pytest.raises(TokenRejectedError) as caught:
        admit_admin(ADMIN, account)
    assert caught.value.detail.startswith(detail)


def test_a_demoted_admin_or_a_user_token_is_not_an_admin() -> None:
    with pytest.raises(NotAdminError):
        admit_admin(ADMIN, _account("user"))
    with pytest.raises(NotAdminError):  # the token's role decides first: no account needed
        admit_admin(Principal("boss", "user", 2), _account())


def test_a_revoked_token_of_a_demoted_admin_is_rejected_not_forbidden() -> None:
    # log in again first: the account changed, so the token no longer counts at all
    with pytest.raises(TokenRejectedError):
        admit_admin(ADMIN, _account("user", generation=3))


async def test_authorize_reads_the_account_only_for_an_admin_token() -> None:
    accounts = Directory(boss=_account())
    assert await authorize_admin(ADMIN, accounts) is ADMIN
    assert accounts.reads == 1
    with pytest.raises(NotAdminError):
        await authorize_admin(Principal("boss", "user", 2), accounts)
    assert accounts.reads == 1
    with pytest.raises(TokenRejectedError, match="no longer exists"):
        await authorize_admin(Principal("ghost", "admin"), accounts)


async def test_authorize_fails_closed_when_the_store_is_down() -> None:
    accounts = Directory(boss=_account())
    accounts.down = True
    with pytest.raises(AccountStoreUnavailableError):
        await authorize_admin(ADMIN, accounts)
