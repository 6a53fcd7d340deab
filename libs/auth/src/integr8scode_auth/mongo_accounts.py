"""What an account may do now, read from the api's ``users`` collection (read-only: the api
is its only writer) and cached briefly.

A token says who the caller was when it was issued; whether it still grants anything depends
on the account now: gone, disabled, demoted, or its tokens revoked (its ``token_generation``
went up). The api writes these fields (``role``, ``disabled``, ``token_generation``); accounts
stored before the last two existed read as enabled, generation 0. The cache bounds revocation
to ``ttl_s`` (2 s by default) at one read per admin per ``ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from integr8scode_auth.errors import AccountStoreUnavailableError
from integr8scode_auth.records import AccountStatus
from integr8scode_auth.settings import ACCOUNT_CACHE_S

COLLECTION = "users"
_FIELDS = {"role": 1, "disabled": 1, "token_generation": 1}
_MAX_ENTRIES = 10_000  # admins are few; a flood of tokens of deleted users can't grow it


class MongoAccountDirectory:
    """``AccountDirectory`` over the api's ``users`` collection (``COLLECTION``)."""

    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        *,
        ttl_s: float = ACCOUNT_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = collection
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, AccountStatus | None]] = {}

    async def status(self, user_id: str) -> AccountStatus | None:
        """The account now, or None; absence is cached too. ``AccountStoreUnavailableError``
        when Mongo does not answer (never a stale entry instead)."""
        now = self._clock()
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            doc = await self._users.find_one({"_id": user_id}, _FIELDS)
        except PyMongoError as exc:  # never answered from a stale entry: fail closed
            raise AccountStoreUnavailableError(
                f"account store unavailable: {type(exc).__name__}; try again"
            ) from exc
        found = None if doc is None else _status(doc)
        if self._ttl > 0:
            if len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
            self._cache[user_id] = (now + self._ttl, found)
        return found


def _status(doc: dict[str, Any]) -> AccountStatus:
    generation = doc.get("token_generation", 0)
    return AccountStatus(
        role=str(doc.get("role", "")),
        disabled=bool(doc.get("disabled", False)),
        token_generation=generation if isinstance(generation, int) else 0,
    )
