"""What the API needs from the outside world, as Protocols the adapters implement (and the unit
tests fake). Every method raises ``DependencyUnavailableError`` when its backing service is down."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from integr8scode_api.domain.users import Principal, Role, User


class UserRepository(Protocol):
    """Accounts (collection ``users``, written only by the API)."""

    async def ensure_indexes(self) -> None:
        """Create the unique indexes on ``username`` and on its look-alike skeleton (and give
        accounts stored before skeletons existed theirs); idempotent."""
        ...

    async def add(self, user: User) -> None:
        """Insert a new account; ``ConflictError`` when the username is taken, or its look-alike
        skeleton is (``domain.lookalikes``)."""
        ...

    async def get(self, user_id: str) -> User | None: ...

    async def by_username(self, username: str) -> User | None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def page(self, *, offset: int, limit: int, role: Role | None = None) -> Sequence[User]:
        """Accounts newest first, optionally only those with ``role``."""
        ...

    async def update_access(
        self, user_id: str, *, role: Role | None = None, disabled: bool | None = None
    ) -> User | None:
        """Set what is given and raise ``token_generation`` by one, atomically (every token
        issued before is void); the account as it is now, None if there is none."""
        ...

    async def delete(self, user_id: str) -> bool:
        """Remove the account; False if there was none."""
        ...

    async def count_active_admins(self) -> int:
        """Accounts with the admin role that are not disabled."""
        ...


class PasswordHasher(Protocol):
    """Slow, salted password hashing. Async because hashing is CPU work kept off the loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; False (never an exception) when it doesn't."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with weaker parameters than the current ones."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


class TokenIssuer(Protocol):
    """Access tokens: who the caller is and what role they have, until they expire."""

    def issue(self, user: User) -> IssuedToken: ...

    def verify(self, token: str) -> Principal:
        """The principal a token names; ``UnauthorizedError`` when it is expired or invalid."""
        ...


class LoginThrottle(Protocol):
    """Failed logins per account: after too many, the account refuses logins for a while
    (whoever tries, and whether it exists: the answer tells nothing about the account)."""

    async def blocked_for(self, account: str) -> float:
        """Seconds until ``account`` may try again; 0 when it may now."""
        ...

    async def failed(self, account: str) -> None: ...

    async def succeeded(self, account: str) -> None: ...
