"""``SlotPool`` on Mongo: collection ``slots``, one document per run slot of the cluster.

A slot is taken with one atomic ``find_one_and_update`` on a free (or lease-expired) slot, so
every coordinator instance shares one global limit. Leases are renewed by the holder's
heartbeat; a slot whose holder died frees itself when its lease runs out. The per-user cap is
checked with a count before taking a slot: two instances may, in a narrow race, admit one run
over a user's cap — never over the global limit. That holds on MongoDB; FerretDB 1.x (the local
stack) does not make ``find_one_and_update`` atomic, so there only one instance keeps the limit
exact (its reservations are serialized in-process).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_coordinator.domain.errors import StoreUnavailableError
from integr8scode_coordinator.domain.ports import Reservation


class MongoSlotPool:
    def __init__(self, collection: AsyncCollection[dict[str, Any]], size: int) -> None:
        self._c = collection
        self._size = size
        # FerretDB applies a conditional update as query-then-write outside any transaction, so
        # two concurrent reservations can take the same slot: this process reserves one at a
        # time (see MongoSagaStore). Across instances only MongoDB keeps the limit exact.
        self._writes = asyncio.Lock()

    async def ensure_slots(self) -> None:
        """Create the slot documents (idempotent); extra slots above ``size`` are removed."""
        try:
            await self._c.create_index([("user_id", ASCENDING), ("lease_until", ASCENDING)])
            await self._c.create_index([("execution_id", ASCENDING)])
            for index in range(self._size):
                with contextlib.suppress(DuplicateKeyError):
                    await self._c.insert_one(
                        {"_id": f"slot-{index:04d}", "index": index, "execution_id": None}
                    )
            await self._c.delete_many({"index": {"$gte": self._size}, "execution_id": None})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not set up slots: {exc}") from exc

    async def reserve(
        self, execution_id: str, user_id: str, owner: str, lease_until: datetime, per_user: int
    ) -> Reservation:
        try:
            async with self._writes:
                now = datetime.now(UTC)
                held = await self._c.count_documents(
                    {"user_id": user_id, "lease_until": {"$gt": now}}
                )
                if held >= per_user:
                    return Reservation.USER_LIMIT
                taken = await self._c.find_one_and_update(
                    {
                        "index": {"$lt": self._size},
                        "$or": [{"execution_id": None}, {"lease_until": {"$lt": now}}],
                    },
                    {
                        "$set": {
                            "execution_id": execution_id,
                            "user_id": user_id,
                            "owner": owner,
                            "lease_until": lease_until,
                            "taken_at": now,
                        }
                    },
                )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"slot pool unavailable: {exc}") from exc
        return Reservation.RESERVED if taken is not None else Reservation.FULL

    async def release(self, execution_id: str) -> None:
        try:
            async with self._writes:
                await self._c.update_many(
                    {"execution_id": execution_id},
                    {
                        "$set": {
                            "execution_id": None,
                            "user_id": None,
                            "owner": None,
                            "lease_until": None,
                        }
                    },
                )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not release slot: {exc}") from exc

    async def renew(self, owner: str, execution_ids: Sequence[str], lease_until: datetime) -> None:
        if not execution_ids:
            return
        try:
            async with self._writes:
                await self._c.update_many(
                    {"execution_id": {"$in": list(execution_ids)}, "owner": owner},
                    {"$set": {"lease_until": lease_until}},
                )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not renew slots: {exc}") from exc

    async def in_use(self) -> int:
        now = datetime.now(UTC)
        return await self._c.count_documents(
            {"execution_id": {"$ne": None}, "lease_until": {"$gt": now}}
        )
