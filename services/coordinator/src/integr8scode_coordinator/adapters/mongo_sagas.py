"""``SagaStore`` on Mongo: collection ``sagas``, one document per execution."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Coroutine, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_coordinator.domain.errors import StoreUnavailableError
from integr8scode_coordinator.domain.saga import (
    ACTIVE,
    TERMINAL,
    ExecutionRequest,
    Saga,
    SagaStatus,
)

_TERMINAL = [s.value for s in TERMINAL]
_ACTIVE = [s.value for s in ACTIVE]


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _to_saga(doc: dict[str, Any]) -> Saga:
    return Saga(
        execution_id=doc["_id"],
        user_id=doc["user_id"],
        correlation_id=doc["correlation_id"],
        request=ExecutionRequest(**doc["request"]),
        status=SagaStatus(doc["status"]),
        enqueued_at=_aware(doc["enqueued_at"]) or datetime.now(UTC),
        traceparent=doc.get("traceparent"),
        tracestate=doc.get("tracestate"),
        owner=doc.get("owner"),
        lease_until=_aware(doc.get("lease_until")),
        cancel_requested=bool(doc.get("cancel_requested")),
        steps=list(doc.get("steps", [])),
        started_at=_aware(doc.get("started_at")),
        finished_at=_aware(doc.get("finished_at")),
        error=doc.get("error"),
    )


class MongoSagaStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection
        # FerretDB (the local and CI Mongo) applies an update as a read-modify-write of the
        # whole document outside any transaction: two concurrent updates of one saga overwrite
        # each other (a heartbeat could undo a finish) and two conditional ones can both match.
        # This process's updates therefore go one at a time; with MongoDB they are atomic anyway.
        self._writes = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        try:
            await self._c.create_index([("status", ASCENDING), ("enqueued_at", ASCENDING)])
            await self._c.create_index([("owner", ASCENDING), ("status", ASCENDING)])
            await self._c.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
            await self._c.create_index(
                [("terminal_published", ASCENDING), ("finished_at", ASCENDING)]
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not index sagas: {exc}") from exc

    async def create(self, saga: Saga) -> bool:
        doc = {
            "_id": saga.execution_id,
            "user_id": saga.user_id,
            "correlation_id": saga.correlation_id,
            "request": asdict(saga.request),
            "status": saga.status.value,
            "steps": saga.steps,
            "enqueued_at": saga.enqueued_at,
            "traceparent": saga.traceparent,
            "tracestate": saga.tracestate,
            "owner": None,
            "lease_until": None,
            "cancel_requested": False,
            "terminal_published": False,
        }
        try:
            await self._c.insert_one(doc)
        except DuplicateKeyError:
            return False
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not store saga: {exc}") from exc
        return True

    async def get(self, execution_id: str) -> Saga | None:
        doc = await self._call(self._c.find_one({"_id": execution_id}))
        return _to_saga(doc) if doc else None

    async def oldest_queued(self, limit: int, exclude_users: Collection[str] = ()) -> list[Saga]:
        query: dict[str, Any] = {"status": SagaStatus.QUEUED.value}
        if exclude_users:
            query["user_id"] = {"$nin": list(exclude_users)}
        try:
            cursor = self._c.find(query).sort("enqueued_at", ASCENDING)
            docs = await cursor.limit(limit).to_list()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read the queue: {exc}") from exc
        return [_to_saga(d) for d in docs]

    async def claim_queued(self, execution_id: str, owner: str, lease_until: datetime) -> bool:
        doc = await self._write(
            self._c.find_one_and_update(
                {"_id": execution_id, "status": SagaStatus.QUEUED.value},
                {
                    "$set": {
                        "status": SagaStatus.RESERVED.value,
                        "owner": owner,
                        "lease_until": lease_until,
                    },
                    "$push": {"steps": "reserve_slot"},
                },
            )
        )
        return doc is not None

    async def record_step(
        self, execution_id: str, step: str, status: SagaStatus, **fields: Any
    ) -> None:
        await self._write(
            self._c.update_one(
                {"_id": execution_id, "status": {"$nin": _TERMINAL}},
                {"$set": {"status": status.value, **fields}, "$push": {"steps": step}},
            )
        )

    async def finish(
        self,
        execution_id: str,
        status: SagaStatus,
        event: dict[str, Any],
        *,
        only_from: SagaStatus | None = None,
        error: str | None = None,
    ) -> bool:
        condition: Any = only_from.value if only_from is not None else {"$nin": _TERMINAL}
        doc = await self._write(
            self._c.find_one_and_update(
                {"_id": execution_id, "status": condition},
                {
                    "$set": {
                        "status": status.value,
                        "finished_at": datetime.now(UTC),
                        "terminal_event": event,
                        "terminal_published": False,
                        "owner": None,
                        "lease_until": None,
                        "error": error,
                    },
                    "$push": {"steps": f"finish:{status.value}"},
                },
                return_document=ReturnDocument.AFTER,
            )
        )
        return doc is not None

    async def mark_published(self, execution_id: str) -> None:
        await self._write(
            self._c.update_one({"_id": execution_id}, {"$set": {"terminal_published": True}})
        )

    async def unpublished_terminal(self, older_than: datetime) -> list[dict[str, Any]]:
        try:
            docs = await self._c.find(
                {
                    "terminal_published": False,
                    "status": {"$in": _TERMINAL},
                    "finished_at": {"$lt": older_than},
                },
                {"terminal_event": 1},
            ).to_list(100)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read the outbox: {exc}") from exc
        return [d["terminal_event"] for d in docs if d.get("terminal_event")]

    async def renew_leases(
        self, owner: str, execution_ids: Sequence[str], lease_until: datetime
    ) -> None:
        if execution_ids:
            await self._write(
                self._c.update_many(
                    {"_id": {"$in": list(execution_ids)}, "owner": owner},
                    {"$set": {"lease_until": lease_until}},
                )
            )

    async def expired(self, now: datetime, limit: int) -> list[Saga]:
        try:
            docs = await self._c.find(
                {"status": {"$in": _ACTIVE}, "lease_until": {"$lt": now}}
            ).to_list(limit)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read expired sagas: {exc}") from exc
        return [_to_saga(d) for d in docs]

    async def take_over(self, execution_id: str, owner: str, lease_until: datetime) -> Saga | None:
        doc = await self._write(
            self._c.find_one_and_update(
                {
                    "_id": execution_id,
                    "status": {"$in": _ACTIVE},
                    "lease_until": {"$lt": datetime.now(UTC)},
                },
                {"$set": {"owner": owner, "lease_until": lease_until}},
                return_document=ReturnDocument.AFTER,
            )
        )
        return _to_saga(doc) if doc else None

    async def requeue(self, execution_id: str, owner: str) -> bool:
        doc = await self._write(
            self._c.find_one_and_update(
                {"_id": execution_id, "owner": owner, "status": SagaStatus.RESERVED.value},
                {
                    "$set": {"status": SagaStatus.QUEUED.value, "owner": None, "lease_until": None},
                    "$push": {"steps": "requeue"},
                },
            )
        )
        return doc is not None

    async def request_cancel(self, execution_id: str) -> None:
        await self._write(
            self._c.update_one(
                {"_id": execution_id, "status": {"$nin": _TERMINAL}},
                {"$set": {"cancel_requested": True}},
            )
        )

    async def cancel_requested(self, owner: str, execution_ids: Sequence[str]) -> list[str]:
        if not execution_ids:
            return []
        try:
            docs = await self._c.find(
                {"_id": {"$in": list(execution_ids)}, "cancel_requested": True}, {"_id": 1}
            ).to_list(len(execution_ids))
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read cancel flags: {exc}") from exc
        return [d["_id"] for d in docs]

    async def _write(self, update: Coroutine[Any, Any, Any]) -> Any:
        try:
            async with self._writes:
                return await self._call(update)
        finally:
            update.close()  # not started if cancelled while waiting: no "never awaited" warning

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except PyMongoError as exc:
            raise StoreUnavailableError(f"saga store unavailable: {exc}") from exc
