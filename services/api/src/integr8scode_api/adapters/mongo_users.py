"""Accounts in the Mongo-wire collection ``users`` (written only by the API)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from integr8scode_api.domain.errors import Conflict, DependencyUnavailable
from integr8scode_api.domain.users import Role, User

COLLECTION = "users"


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except ConnectionFailure as exc:  # includes server selection timeouts and network errors
        raise DependencyUnavailable(
            f"user store unavailable: {type(exc).__name__}", dependency="mongo"
        ) from exc


def _to_doc(user: User) -> dict[str, Any]:
    return {
        "_id": user.id,
        "username": user.username,
        "role": user.role.value,
        "password_hash": user.password_hash,
        "created_at": user.created_at,
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
    )


class MongoUserRepository:
    """``UserRepository`` over one collection; the unique index on ``username`` is made before
    the first insert (and by the bootstrap), so two registrations can't take the same name."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._users = collection
        self._indexed = False
        self._index_lock = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        if self._indexed:
            return
        async with self._index_lock:  # concurrent first inserts create it once
            if not self._indexed:
                with _translated():
                    await self._users.create_index(
                        [("username", ASCENDING)], unique=True, name="username_unique"
                    )
                self._indexed = True

    async def add(self, user: User) -> None:
        await self.ensure_indexes()
        try:
            with _translated():
                await self._users.insert_one(_to_doc(user))
        except DuplicateKeyError:
            raise Conflict(f"username '{user.username}' is already taken") from None

    async def get(self, user_id: str) -> User | None:
        with _translated():
            doc = await self._users.find_one({"_id": user_id})
        return None if doc is None else _from_doc(doc)

    async def by_username(self, username: str) -> User | None:
        with _translated():
            doc = await self._users.find_one({"username": username})
        return None if doc is None else _from_doc(doc)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        with _translated():
            await self._users.update_one(
                {"_id": user_id}, {"$set": {"password_hash": password_hash}}
            )
