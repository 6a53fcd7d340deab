"""Whether a verified token still opens an admin API: the account as it is now decides.

A token is only who the caller was when it was issued. It counts while its account exists, is
enabled and has not changed since (its ``token_generation`` is not above the token's ``gen``:
a role change, a disable or a "log out everywhere" raises it), and it opens an admin API only
while the account is an admin now. The order is part of the contract: a token that does not
even say admin is refused without reading the account."""

from __future__ import annotations

from integr8scode_auth.errors import NotAdminError, TokenRejectedError
from integr8scode_auth.ports import AccountDirectory
from integr8scode_auth.records import ADMIN_ROLE, AccountStatus, Principal

GONE = "the account of this token no longer exists"
DISABLED = "this account is disabled"
REVOKED = (
    "this token was revoked (the account's role or state changed, or it logged out "
    "everywhere); log in again"
)
NOT_ADMIN = "this needs the admin role"


def admit_admin(principal: Principal, account: AccountStatus | None) -> Principal:
    """``principal`` if its token says admin and ``account`` (the account now, None when there
    is none) is an enabled admin that changed nothing since the token was issued.
    ``NotAdminError`` when either is not an admin; ``TokenRejectedError`` when the token no
    longer counts (gone, disabled, revoked)."""
    if not principal.admin:
        raise NotAdminError(NOT_ADMIN)
    if account is None:
        raise TokenRejectedError(GONE)
    if account.disabled:
        raise TokenRejectedError(DISABLED)
    if principal.token_generation < account.token_generation:
        raise TokenRejectedError(REVOKED)
    if account.role != ADMIN_ROLE:
        raise NotAdminError(NOT_ADMIN)
    return principal


async def authorize_admin(principal: Principal, accounts: AccountDirectory) -> Principal:
    """``admit_admin`` against the account read from ``accounts``; a token that does not say
    admin is refused before any read. ``AccountStoreUnavailableError`` passes through: fail
    closed."""
    if not principal.admin:
        raise NotAdminError(NOT_ADMIN)
    return admit_admin(principal, await accounts.status(principal.user_id))
