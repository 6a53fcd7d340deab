"""``SlotPool`` on Mongo: collection ``slots``, one document per run slot *while it is held*.

A slot is ``{_id: "slot-NNNN", execution_id, user_id, owner, lease_until, taken_at}``; taking
it is a unique insert of its ``_id`` (of concurrent takers exactly one succeeds, also on
FerretDB 1.x whose conditional updates are not atomic), releasing it is a delete. So however
many coordinator instances reserve at once, at most ``size`` slot documents exist: the global
limit holds cluster-wide. ``reserve`` reads the (small) collection, then tries the free slot
ids from a random start, so concurrent reservers rarely collide.

Leases are renewed by the holder's heartbeat. A slot whose lease ran out is not reused by
``reserve``: it stays until the janitor of a live instance has recovered its execution
(``expired`` → ``SagaStore.take_over`` → ``prolong`` → requeue or fail → ``release``), so a
dead holder's run is never forgotten.

The per-user cap is a count of the user's live slots before taking one: two instances may, in
a narrow race, admit one run over a user's cap — never over the global limit.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_coordinator.domain.errors import StoreUnavailableError
from integr8scode_coordinator.domain.ports import HeldSlot, HeldSlots, Reservation


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def slot_id(index: int) -> str:
    return f"slot-{index:04d}"


class MongoSlotPool:
    def __init__(self, collection: AsyncCollection[dict[str, Any]], size: int) -> None:
        self._c = collection
        self._size = size

    async def ensure_slots(self) -> None:
        """Indexes, and removal of free slot documents of the earlier layout (one document
        per slot, held or not). Idempotent."""
        try:
            await self._c.create_index([("execution_id", ASCENDING)])
            await self._c.delete_many({"execution_id": None})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not set up slots: {exc}") from exc

    async def reserve(
        self,
        execution_id: str,
        user_id: str,
        owner: str,
        lease_until: datetime,
        per_user: int,
        *,
        seen: HeldSlots | None = None,
    ) -> Reservation:
        try:
            now = datetime.now(UTC)
            held = seen if seen is not None else await self.held_slots()
            if held.live_by_user.get(user_id, 0) >= per_user:
                return Reservation.USER_LIMIT
            free = [i for i in range(self._size) if slot_id(i) not in held.taken]
            if len(held.taken) >= self._size or not free:
                return Reservation.FULL
            start = random.randrange(len(free))  # noqa: S311 - spreads reservers, not security
            for index in free[start:] + free[:start]:
                doc = {
                    "_id": slot_id(index),
                    "execution_id": execution_id,
                    "user_id": user_id,
                    "owner": owner,
                    "lease_until": lease_until,
                    "taken_at": now,
                }
                try:
                    await self._c.insert_one(doc)
                except DuplicateKeyError:
                    continue  # another reserver got this one first
                return Reservation.RESERVED
        except PyMongoError as exc:
            raise StoreUnavailableError(f"slot pool unavailable: {exc}") from exc
        return Reservation.FULL

    async def held_slots(self) -> HeldSlots:
        try:
            docs = await self._c.find({}, {"user_id": 1, "lease_until": 1}).to_list()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"slot pool unavailable: {exc}") from exc
        now = datetime.now(UTC)
        counts: dict[str, int] = {}
        for d in docs:
            lease = d.get("lease_until")
            if d.get("user_id") and lease is not None and _aware(lease) > now:
                counts[d["user_id"]] = counts.get(d["user_id"], 0) + 1
        return HeldSlots(taken=frozenset(d["_id"] for d in docs), live_by_user=counts)

    async def release(self, execution_id: str, owner: str) -> None:
        try:
            await self._c.delete_many({"execution_id": execution_id, "owner": owner})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not release slot: {exc}") from exc

    async def renew(self, owner: str, execution_ids: Sequence[str], lease_until: datetime) -> None:
        if not execution_ids:
            return
        try:
            await self._c.update_many(
                {"execution_id": {"$in": list(execution_ids)}, "owner": owner},
                {"$set": {"lease_until": lease_until}},
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not renew slots: {exc}") from exc

    async def expired(self, now: datetime, limit: int) -> list[HeldSlot]:
        try:
            docs = await self._c.find({"lease_until": {"$lt": now}}).to_list(limit)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read expired slots: {exc}") from exc
        return [
            HeldSlot(
                slot_id=d["_id"],
                execution_id=d["execution_id"],
                user_id=d.get("user_id") or "",
                owner=d.get("owner") or "",
                lease_until=_aware(d["lease_until"]),
            )
            for d in docs
            if d.get("execution_id")
        ]

    async def prolong(self, slot: HeldSlot, lease_until: datetime) -> bool:
        try:
            result = await self._c.update_one(
                {
                    "_id": slot.slot_id,
                    "execution_id": slot.execution_id,
                    "owner": slot.owner,
                    "lease_until": slot.lease_until,
                },
                {"$set": {"lease_until": lease_until}},
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not prolong slot: {exc}") from exc
        return result.modified_count == 1

    async def in_use(self) -> int:
        now = datetime.now(UTC)
        return await self._c.count_documents({"lease_until": {"$gt": now}})
