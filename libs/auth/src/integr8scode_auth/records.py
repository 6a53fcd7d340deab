"""Who a token speaks for, and what the account is now: plain records, no infrastructure."""

from __future__ import annotations

from dataclasses import dataclass

ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Principal:
    """Who a verified access token speaks for; ``token_generation`` is the account's when the
    token was issued (0 for tokens from before generations existed)."""

    user_id: str
    role: str
    token_generation: int = 0

    @property
    def admin(self) -> bool:
        """Whether the token says admin (the account may have changed since)."""
        return self.role == ADMIN_ROLE


@dataclass(frozen=True)
class AccountStatus:
    """An account as it is now (the api's ``users`` collection)."""

    role: str
    disabled: bool
    token_generation: int
