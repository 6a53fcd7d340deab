"""The lib's exceptions. Each service maps them to its own HTTP errors once, at its edge
(its ``errors.py``): the lib knows nothing of status codes or of which API it guards."""

from __future__ import annotations


class AuthError(Exception):
    """Base of the lib's errors; ``detail`` is what a caller may read."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TokenRejectedError(AuthError):
    """The token does not verify (signature, expiry, claims), or it no longer counts: its
    account is gone, disabled, or changed since the token was issued. Log in again (a 401)."""


class NotAdminError(AuthError):
    """A valid token whose account is not (or whose token does not say it is) an admin (a 403).
    The service names what needed the role in its own message."""


class AccountStoreUnavailableError(AuthError):
    """The account could not be read; nothing is answered from a stale entry (a 503)."""
