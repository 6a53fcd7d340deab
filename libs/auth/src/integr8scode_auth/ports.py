"""The two things an admin check needs from outside, as Protocols (the lib's own adapters,
``tokens.JwtVerifier`` and ``mongo_accounts.MongoAccountDirectory``, implement them; tests
put fakes behind them)."""

from __future__ import annotations

from typing import Protocol

from integr8scode_auth.records import AccountStatus, Principal


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Principal:
        """The token's principal, without a lookup; ``TokenRejectedError`` when it does not
        verify."""
        ...


class AccountDirectory(Protocol):
    async def status(self, user_id: str) -> AccountStatus | None:
        """The account now (cached for at most a few seconds), None when there is none;
        ``AccountStoreUnavailableError`` when it can't be read."""
        ...
