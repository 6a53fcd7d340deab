"""Users: the model and the rules a username and a password must follow."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from zxcvbn import zxcvbn

from integr8scode_api.domain.errors import ValidationFailedError

USERNAME_MIN, USERNAME_MAX = 3, 32
PASSWORD_MIN, PASSWORD_MAX = 8, 128
_USERNAME = re.compile(r"[a-zA-Z0-9_.-]+")

USERNAME_RULE = (
    f"username must be {USERNAME_MIN}-{USERNAME_MAX} characters of letters, digits, '_', '.', '-'"
)
PASSWORD_RULE = f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters long"
# zxcvbn's 0-4 estimate: below 2 the password is among the common ones, a keyboard walk, a
# repeat, a dictionary word with a digit, ... (guessable in well under 10^8 tries).
PASSWORD_MIN_STRENGTH = 2


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class User(BaseModel):
    """A registered account. ``password_hash`` never leaves the service. ``token_generation``
    goes up at every change of role or state (and at "log out everywhere"): a token carries the
    generation it was issued at and is void once the account's is higher. A disabled account
    can't log in and its tokens open nothing."""

    model_config = ConfigDict(frozen=True)

    id: str
    username: str
    role: Role
    password_hash: str = Field(repr=False)
    created_at: datetime
    disabled: bool = False
    token_generation: int = 0

    @classmethod
    def new(cls, username: str, password_hash: str, role: Role = Role.USER) -> User:
        """A fresh account with a random id; ``username`` must be normalized already."""
        return cls(
            id=uuid.uuid4().hex,
            username=username,
            role=role,
            password_hash=password_hash,
            created_at=_now_ms(),
        )


def _now_ms() -> datetime:
    # Millisecond precision: what BSON stores, so a user reads back equal to how it was made.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Principal(BaseModel):
    """Who a valid access token says the caller is; no lookup needed to know it."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    role: Role
    token_generation: int = 0


def normalize_username(raw: str) -> str:
    """The stored form of a username: usernames are case-insensitive, kept in lower case, so
    ``Alice`` and ``alice`` can't be two accounts; width and compatibility forms are folded
    first (NFKC: ``alice`` in full-width letters is ``alice``). Raises ``ValidationFailedError``."""
    name = unicodedata.normalize("NFKC", raw)
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX or not _USERNAME.fullmatch(name):
        raise ValidationFailedError(USERNAME_RULE)
    return name.lower()


def check_password(password: str, username: str | None = None, *, strength: bool = True) -> str:
    """The password if it is acceptable for a new account; raises ``ValidationFailedError``: its
    length, not the username, and (with ``strength``) not easy to guess — zxcvbn's estimate,
    which knows the most common passwords, keyboard walks, dates and the username itself."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValidationFailedError(PASSWORD_RULE)
    if username is not None and password.casefold() == username.casefold():
        raise ValidationFailedError("password must not be the username")
    if strength:
        estimate = zxcvbn(password, user_inputs=[username] if username else [])
        if estimate["score"] < PASSWORD_MIN_STRENGTH:
            feedback = estimate["feedback"]
            why = feedback.get("warning") or " ".join(feedback.get("suggestions") or [])
            raise ValidationFailedError(
                "password is too easy to guess" + (f": {why}" if why else "")
            )
    return password
