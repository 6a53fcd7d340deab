"""Registration, login and the admin bootstrap, in terms of the ports only."""

from __future__ import annotations

import asyncio
import logging
import secrets

from integr8scode_api.domain.errors import (
    ConflictError,
    DependencyUnavailableError,
    ForbiddenError,
    TooManyAttemptsError,
    UnauthorizedError,
    ValidationFailedError,
)
from integr8scode_api.domain.lookalikes import (
    RESERVED_USERNAMES,
    looks_reserved,
    reserved_skeletons,
)
from integr8scode_api.domain.ports import (
    IssuedToken,
    LoginThrottle,
    PasswordHasher,
    TokenIssuer,
    UserRepository,
)
from integr8scode_api.domain.users import Role, User, check_password, normalize_username

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "invalid username or password"
RESERVED_RULE = (
    "username is reserved, or looks like a reserved name ("
    + ", ".join(sorted(RESERVED_USERNAMES))
    + "); choose another"
)


class AuthService:
    """Accounts and credentials. The public ``RESERVED_USERNAMES`` and their look-alikes are
    refused outright (422). ``reserved_usernames`` (the bootstrap admin's configured name, so
    nobody takes it before the bootstrap runs) and their look-alikes are refused like a taken
    name: saying so would disclose the admin's name."""

    def __init__(
        self,
        users: UserRepository,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        *,
        reserved_usernames: frozenset[str] = frozenset(),
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._throttle = throttle
        self._users = users
        self._hasher = hasher
        self._tokens = tokens
        self._public_reserved = reserved_skeletons(RESERVED_USERNAMES)
        self._private_reserved = reserved_skeletons(reserved_usernames)
        self._dummy_hash: str | None = None

    async def register(
        self, username: str, password: str, role: Role = Role.USER, *, strength: bool = True
    ) -> User:
        """A new account; ``ValidationFailedError`` on bad input (a password easy to guess, too,
        with ``strength``; a reserved name or its look-alike), ``ConflictError`` when the name, or
        one that looks like it, is taken."""
        name = normalize_username(username)
        check_password(password, name, strength=strength)
        if role is not Role.ADMIN and looks_reserved(name, self._public_reserved):
            raise ValidationFailedError(RESERVED_RULE)
        # Hashed before anything can say "taken": every answer costs one hash.
        user = User.new(name, await self._hasher.hash(password), role)
        if role is not Role.ADMIN and looks_reserved(name, self._private_reserved):
            raise ConflictError(f"username '{name}' is already taken")
        await self._users.add(user)
        log.info("registered user %s (%s)", user.id, user.role)
        return user

    async def sign_up(self, username: str, password: str) -> str:
        """Public registration: ``register`` with the role ``user``, answering the same whether
        or not the name (or a look-alike) was taken, so it can't be used to find accounts. The
        normalized name; ``ValidationFailedError`` on bad input, which says nothing about others.
        Someone whose name was taken finds out when the login fails."""
        try:
            user = await self.register(username, password)
        except ConflictError:
            log.info("registration not done: the name or a look-alike is taken")
            return normalize_username(username)
        return user.username

    async def log_out_everywhere(self, user: User) -> None:
        """Void every token issued to ``user`` so far (their generation goes up)."""
        await self._users.update_access(user.id)
        log.info("revoked every token of %s at its request", user.id)

    async def authenticate(self, username: str, password: str) -> User:
        """The account these credentials open; ``UnauthorizedError`` with one message whether the
        user is unknown or the password wrong, after the same amount of hashing work.
        ``TooManyAttemptsError`` while the account is throttled after failed logins (known or not:
        the throttle says nothing about the account either)."""
        try:
            name = normalize_username(username)
        except ValidationFailedError:  # can't exist; answer like any unknown user
            name = None
        if name is not None and self._throttle is not None:
            wait_s = await self._throttle.blocked_for(name)
            if wait_s > 0:
                raise TooManyAttemptsError(
                    f"too many failed logins for this account; try again in {wait_s:.0f}s",
                    retry_after_s=wait_s,
                )
        user = await self._users.by_username(name) if name is not None else None
        if user is None:
            await self._hasher.verify(await self._dummy(), password)
            await self._failed(name)
            raise UnauthorizedError(BAD_CREDENTIALS)
        if not await self._hasher.verify(user.password_hash, password):
            await self._failed(name)
            raise UnauthorizedError(BAD_CREDENTIALS)
        if self._throttle is not None:
            await self._throttle.succeeded(user.username)
        if user.disabled:  # told only to whoever knows the password
            raise ForbiddenError("this account is disabled; ask an admin")
        if self._hasher.needs_rehash(user.password_hash):
            await self._rehash(user, password)
        return user

    async def _failed(self, name: str | None) -> None:
        if name is not None and self._throttle is not None:
            await self._throttle.failed(name)

    async def login(self, username: str, password: str) -> IssuedToken:
        return self._tokens.issue(await self.authenticate(username, password))

    async def ensure_admin(self, username: str, password: str) -> User | None:
        """Create the admin account unless it exists; None (and an error logged) when the name
        belongs to an account that is not an admin."""
        await self._users.ensure_indexes()
        name = normalize_username(username)
        existing = await self._users.by_username(name)
        if existing is None:
            try:
                # The admin password is the operator's setting (checked at start outside
                # local profiles); a bootstrap is not the place to refuse it.
                existing = await self.register(name, password, Role.ADMIN, strength=False)
            except ConflictError:  # another instance created it between our read and write
                existing = await self._users.by_username(name)
            else:
                log.info("created admin account '%s'", name)
                return existing
        if existing is None or existing.role is not Role.ADMIN:
            log.error("admin bootstrap: '%s' exists and is not an admin; not promoting it", name)
            return None
        return existing

    async def bootstrap_admin(
        self, username: str, password: str, *, retry_s: float = 2.0, max_retry_s: float = 30.0
    ) -> User | None:
        """``ensure_admin``, retried with back-off while the store is unavailable, so the
        service starts (and answers health checks) before Mongo does."""
        delay = retry_s
        while True:
            try:
                return await self.ensure_admin(username, password)
            except DependencyUnavailableError as exc:
                log.warning("admin bootstrap: %s; retrying in %.0fs", exc.detail, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_retry_s)

    async def _dummy(self) -> str:
        # Made on first use, with the current parameters: verifying against it costs what
        # verifying a real password costs, so response time doesn't tell whether a user exists.
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    async def _rehash(self, user: User, password: str) -> None:
        try:
            await self._users.set_password_hash(user.id, await self._hasher.hash(password))
        except DependencyUnavailableError as exc:  # the login itself succeeded; rehash next time
            log.warning("could not store rehashed password of %s: %s", user.id, exc.detail)
        else:
            log.info("rehashed password of %s with current parameters", user.id)
