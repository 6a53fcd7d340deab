"""Accounts in the Mongo-wire collection ``users`` (written only by the API).

The dlq-processor and event-replay read ``role``, ``disabled`` and ``token_generation`` of a
user by ``_id`` (never write): renaming those fields breaks their token checks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure

from integr8scode_api.domain.errors import ConflictError, DependencyUnavailableError
from integr8scode_api.domain.lookalikes import skeleton
from integr8scode_api.domain.users import Role, User

COLLECTION = "users"
log = logging.getLogger(__name__)
_MAX_CACHED = 10_000  # a flood of tokens of deleted users can't grow the cache past this


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except ConnectionFailure as exc:  # includes server selection timeouts and network errors
        raise DependencyUnavailableError(
            f"user store unavailable: {type(exc).__name__}", dependency="mongo"
        ) from exc


def _to_doc(user: User) -> dict[str, Any]:
    return {
        "_id": user.id,
        "username": user.username,
        "skeleton": skeleton(user.username),
        "role": user.role.value,
        "password_hash": user.password_hash,
        "created_at": user.created_at,
        "disabled": user.disabled,
        "token_generation": user.token_generation,
    }


def _from_doc(doc: dict[str, Any]) -> User:
    created = doc["created_at"]
    if created.tzinfo is None:  # the driver hands back naive UTC unless told otherwise
        created = created.replace(tzinfo=UTC)
    return User(
        id=doc["_id"],
        username=doc["username"],
        role=Role(doc["role"]),
        password_hash=doc["password_hash"],
        created_at=created,
        # Accounts stored before these fields existed: enabled, generation 0.
        disabled=bool(doc.get("disabled", False)),
        token_generation=int(doc.get("token_generation", 0)),
    )


class MongoUserRepository:
    """``UserRepository`` over one collection. Unique indexes on ``username`` and on the
    look-alike ``skeleton`` are made before the first insert (and by the bootstrap), so two
    registrations can't take the same name, nor two names that look alike, even at once.

    ``get`` (every authenticated request asks it) answers from a cache for ``cache_ttl_s``.
    This process's own writes drop the entry they change, so a change made through this api
    process is honoured by its next request; another api replica honours it within
    ``cache_ttl_s``, the bound the other services' account caches keep too. A read that
    overlapped a write is not cached, so a stale answer can't outlive the write."""

    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        *,
        cache_ttl_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = collection
        self._indexed = False
        self._index_lock = asyncio.Lock()
        self._ttl = cache_ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, User | None]] = {}
        self._writes = 0  # bumped by every write: a read overlapping one is not cached

    @contextmanager
    def _writing(self, user_id: str) -> Iterator[None]:
        """Around a write of ``user_id``: its entry is dropped before and after, and a read
        in flight meanwhile (which may see either side of the write) is not cached."""
        self._writes += 1
        self._cache.pop(user_id, None)
        try:
            yield
        finally:
            self._writes += 1
            self._cache.pop(user_id, None)

    async def ensure_indexes(self) -> None:
        if self._indexed:
            return
        async with self._index_lock:  # concurrent first inserts create it once
            if not self._indexed:
                with _translated():
                    await self._users.create_index(
                        [("username", ASCENDING)], unique=True, name="username_unique"
                    )
                    # Sparse: accounts stored before skeletons existed have none until the
                    # backfill below gives them one.
                    await self._users.create_index(
                        [("skeleton", ASCENDING)], unique=True, sparse=True, name="skeleton_unique"
                    )
                    await self._backfill_skeletons()
                self._indexed = True

    async def _backfill_skeletons(self) -> None:
        # Oldest first, so of two existing look-alikes the older keeps the plain skeleton
        # (and with it blocks new look-alikes); the younger twin still works, marked by its id.
        # Deterministic, so api replicas doing this at once write the same values.
        cursor = self._users.find(
            {"skeleton": {"$exists": False}}, {"username": 1}, sort=[("created_at", ASCENDING)]
        )
        async for doc in cursor:
            plain = skeleton(doc["username"])
            twin = await self._users.find_one(
                {"skeleton": plain, "_id": {"$ne": doc["_id"]}}, {"_id": 1}
            )
            if twin is not None:
                log.warning(
                    "user %s looks like %s; kept, marked by its id", doc["_id"], twin["_id"]
                )
            value = plain if twin is None else f"{plain}#{doc['_id']}"
            try:
                await self._set_skeleton(doc["_id"], value)
            except (DuplicateKeyError, OperationFailure):
                # A look-alike registered between the read and the write (FerretDB reports
                # a unique violation on update as a plain OperationFailure).
                await self._set_skeleton(doc["_id"], f"{plain}#{doc['_id']}")

    async def _set_skeleton(self, user_id: str, value: str) -> None:
        await self._users.update_one(
            {"_id": user_id, "skeleton": {"$exists": False}}, {"$set": {"skeleton": value}}
        )

    async def add(self, user: User) -> None:
        await self.ensure_indexes()
        try:
            with self._writing(user.id), _translated():
                await self._users.insert_one(_to_doc(user))
        except DuplicateKeyError:
            raise ConflictError(
                f"username '{user.username}' is already taken or looks like one that is"
            ) from None

    async def get(self, user_id: str) -> User | None:
        now = self._clock()
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        writes = self._writes
        with _translated():  # never answered from a stale entry when Mongo is down
            doc = await self._users.find_one({"_id": user_id})
        user = None if doc is None else _from_doc(doc)
        if self._ttl > 0 and writes == self._writes:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[user_id] = (now + self._ttl, user)
        return user

    async def by_username(self, username: str) -> User | None:
        with _translated():
            doc = await self._users.find_one({"username": username})
        return None if doc is None else _from_doc(doc)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        with self._writing(user_id), _translated():
            await self._users.update_one(
                {"_id": user_id}, {"$set": {"password_hash": password_hash}}
            )

    async def page(self, *, offset: int, limit: int, role: Role | None = None) -> Sequence[User]:
        query: dict[str, Any] = {} if role is None else {"role": role.value}
        with _translated():
            cursor = self._users.find(
                query, sort=[("created_at", DESCENDING), ("_id", ASCENDING)], skip=offset
            ).limit(limit)
            return [_from_doc(doc) async for doc in cursor]

    async def update_access(
        self, user_id: str, *, role: Role | None = None, disabled: bool | None = None
    ) -> User | None:
        changes: dict[str, Any] = {}
        if role is not None:
            changes["role"] = role.value
        if disabled is not None:
            changes["disabled"] = disabled
        update: dict[str, Any] = {"$inc": {"token_generation": 1}}
        if changes:
            update["$set"] = changes
        with self._writing(user_id), _translated():
            doc = await self._users.find_one_and_update(
                {"_id": user_id}, update, return_document=ReturnDocument.AFTER
            )
        return None if doc is None else _from_doc(doc)

    async def delete(self, user_id: str) -> bool:
        with self._writing(user_id), _translated():
            result = await self._users.delete_one({"_id": user_id})
        return result.deleted_count == 1

    async def count_active_admins(self) -> int:
        with _translated():
            return await self._users.count_documents(
                {"role": Role.ADMIN.value, "disabled": {"$ne": True}}
            )
