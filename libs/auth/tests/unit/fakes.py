"""Fakes behind the lib's Protocols and what they stand on, for the unit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from integr8scode_auth import AccountStatus, AccountStoreUnavailableError

SECRET = "a-test-secret-long-enough-for-every-hmac-" + "x" * 23  # 64 bytes: HS512 too


def token(secret: str = SECRET, **claims: Any) -> str:
    """A token as the api issues it (``sub``, ``role``, ``iat``, ``exp``, ``jti``; ``gen``
    only when given); a claim given as None is left out."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "sub": "user-1",
        "role": "admin",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, "HS256")


class Directory:
    """``AccountDirectory`` in a dict; counts reads; ``down`` raises as Mongo's would."""

    def __init__(self, **accounts: AccountStatus) -> None:
        self.by_id = dict(accounts)
        self.reads = 0
        self.down = False

    async def status(self, user_id: str) -> AccountStatus | None:
        self.reads += 1
        if self.down:
            raise AccountStoreUnavailableError("account store unavailable: test")
        return self.by_id.get(user_id)


class Collection:
    """``find_one`` of a users collection with a projection; counts reads; ``error`` raises."""

    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        self.docs = docs
        self.reads = 0
        self.error: Exception | None = None

    async def find_one(self, query: dict[str, Any], projection: dict[str, int]) -> Any:
        self.reads += 1
        if self.error is not None:
            raise self.error
        doc = self.docs.get(query["_id"])
        return None if doc is None else {k: v for k, v in doc.items() if k in projection}


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now
