"""Executions on Mongo: collections ``executions``, ``idempotency_keys`` and
``submission_outbox`` (owned by the API).

``submission_outbox`` holds the ``execution.requested`` events whose publish the broker did not
confirm in time: the API answered 202 for them and re-publishes each (same event id) until the
broker acknowledges it; the coordinator takes an execution once however often it arrives.

The API writes an execution when it accepts it and then only applies lifecycle events to it.
Transitions are conditional updates, so a redelivered or late event never moves a terminal
execution back, and every status change is appended to ``status_history`` once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_api.domain.errors import DependencyUnavailable
from integr8scode_api.domain.executions import TERMINAL_STATUSES, ExecutionStatus

_TERMINAL = [s.value for s in TERMINAL_STATUSES]
OUTBOX_COLLECTION = "submission_outbox"


class MongoExecutions:
    def __init__(
        self,
        executions: AsyncCollection[dict[str, Any]],
        idempotency_keys: AsyncCollection[dict[str, Any]],
        outbox: AsyncCollection[dict[str, Any]],
    ) -> None:
        self._c = executions
        self._keys = idempotency_keys
        self._outbox = outbox

    async def ensure_indexes(self) -> None:
        await self._call(self._c.create_index([("user_id", ASCENDING), ("created_at", DESCENDING)]))

    async def create(self, doc: dict[str, Any]) -> bool:
        """Store a new execution; False if one with its id exists already."""
        try:
            await self._c.insert_one(doc)
        except DuplicateKeyError:
            return False
        except PyMongoError as exc:
            raise DependencyUnavailable(f"execution store unavailable: {exc}") from exc
        return True

    async def get(self, execution_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._call(self._c.find_one({"_id": execution_id}))
        return result

    async def list_for_user(
        self, user_id: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {} if user_id is None else {"user_id": user_id}
        try:
            docs = (
                await self._c.find(query)
                .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
                .skip(offset)
                .limit(limit)
                .to_list()
            )
            total = await self._c.count_documents(query)
        except PyMongoError as exc:
            raise DependencyUnavailable(f"execution store unavailable: {exc}") from exc
        return docs, total

    async def claim_idempotency_key(self, user_id: str, key: str, execution_id: str) -> str | None:
        """Bind ``key`` to ``execution_id``; returns the execution already bound, if any."""
        doc_id = f"{user_id}:{key}"
        try:
            await self._keys.insert_one(
                {"_id": doc_id, "execution_id": execution_id, "created_at": datetime.now(UTC)}
            )
        except DuplicateKeyError:
            existing = await self._call(self._keys.find_one({"_id": doc_id}))
            return str(existing["execution_id"]) if existing else None
        except PyMongoError as exc:
            raise DependencyUnavailable(f"execution store unavailable: {exc}") from exc
        return None

    async def idempotency_key_bound_at(self, user_id: str, key: str) -> datetime | None:
        found = await self._call(
            self._keys.find_one({"_id": f"{user_id}:{key}"}, {"created_at": 1})
        )
        if found is None:
            return None
        bound_at: datetime = found["created_at"]
        return bound_at

    async def release_idempotency_key(self, user_id: str, key: str) -> None:
        await self._call(self._keys.delete_one({"_id": f"{user_id}:{key}"}))

    async def transition(
        self, execution_id: str, status: ExecutionStatus, at: datetime, **fields: Any
    ) -> dict[str, Any] | None:
        """Apply a status change unless the execution is already past it; returns the new doc.

        Read, decide, then update by ``_id`` alone: any other filter field makes FerretDB decode
        the whole collection. One execution's events arrive in order on one partition and are
        applied by one consumer, so nothing else moves this document in between (the POST path
        only touches it before the request is published).
        """
        doc: dict[str, Any] | None = await self._call(self._c.find_one({"_id": execution_id}))
        if doc is None:
            return None
        current = ExecutionStatus(doc["status"])
        # A request the broker acknowledged too late was marked failed "not queued"; when it
        # runs after all, its lifecycle wins over that provisional failure.
        provisional = current is ExecutionStatus.FAILED and bool(doc.get("not_queued"))
        if status is ExecutionStatus.RUNNING:
            allowed = current is ExecutionStatus.QUEUED or provisional
        else:
            allowed = current in {ExecutionStatus.QUEUED, ExecutionStatus.RUNNING} or provisional
        if not allowed:
            return None
        if provisional and "error" not in fields:
            fields = {**fields, "error": None}  # the provisional failure's text goes with it
        change = {"status": status.value, "at": at}
        await self._call(
            self._c.update_one(
                {"_id": execution_id},
                {
                    "$set": {"status": status.value, "not_queued": False, **fields},
                    "$push": {"status_history": change},
                },
            )
        )
        doc.update({"status": status.value, "not_queued": False, **fields})
        doc["status_history"] = [*doc.get("status_history", []), change]
        return doc

    async def set_submission(self, execution_id: str, submission: str) -> None:
        """Where the request's publish stands (``pending`` while the first POST waits for the
        broker, then ``acked`` or ``outbox``): what a retry with the same key answers from."""
        await self._call(
            self._c.update_one({"_id": execution_id}, {"$set": {"submission": submission}})
        )

    async def to_outbox(self, execution_id: str, event: str, trace_context: dict[str, str]) -> None:
        """Keep an unconfirmed request for re-publishing (idempotent), with the trace context
        its re-publishing continues (the request's)."""
        entry = {
            "_id": execution_id,
            "event": event,
            "trace_context": trace_context,
            "created_at": datetime.now(UTC),
        }
        try:
            await self._outbox.insert_one(entry)
        except DuplicateKeyError:
            return
        except PyMongoError as exc:
            raise DependencyUnavailable(f"execution store unavailable: {exc}") from exc

    async def outbox_entries(self, limit: int) -> list[dict[str, Any]]:
        """The oldest unconfirmed requests (a small collection: only what the broker owes)."""
        entries: list[dict[str, Any]] = await self._call(
            self._outbox.find({}).sort("created_at", ASCENDING).limit(limit).to_list()
        )
        return entries

    async def confirmed(self, execution_id: str) -> None:
        """The broker acknowledged the request: out of the outbox, and said so on the doc."""
        await self._call(self._outbox.delete_one({"_id": execution_id}))
        await self.set_submission(execution_id, "acked")

    async def mark_not_queued(self, execution_id: str, error: str) -> None:
        """The broker never took the request: the execution ends as failed, not stuck queued."""
        now = datetime.now(UTC)
        await self._call(
            self._c.update_one(
                {"_id": execution_id, "status": ExecutionStatus.QUEUED.value},
                {
                    "$set": {
                        "status": ExecutionStatus.FAILED.value,
                        "error": error,
                        "finished_at": now,
                        "not_queued": True,
                    },
                    "$push": {"status_history": {"status": "failed", "at": now}},
                },
            )
        )

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except PyMongoError as exc:
            raise DependencyUnavailable(f"execution store unavailable: {exc}") from exc
