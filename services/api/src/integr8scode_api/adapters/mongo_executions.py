"""Executions on Mongo: collections ``executions``, ``idempotency_keys`` and
``submission_outbox`` (owned by the API).

``submission_outbox`` holds the ``execution.requested`` events whose publish the broker did not
confirm in time: the API answered 202 for them and re-publishes each (same event id) until the
broker acknowledges it; the coordinator takes an execution once however often it arrives.

The API writes an execution when it accepts it and then only applies lifecycle events to it.
Transitions are conditional updates, so a redelivered or late event never moves a terminal
execution back, and every status change is appended to ``status_history`` once.

An execution document (the notifier reads it too)::

    {_id, user_id, status, language, language_version, script_length, limits,
     idempotency_key, created_at, trace_id, correlation_id, status_history: [{status, at}],
     request_fingerprint?, submission?,                  # with an Idempotency-Key only
     started_at?, finished_at?, exit_code?, resource_usage?, error?, not_queued?}
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.executions import (
    TERMINAL_STATUSES,
    ExecutionStatus,
    NewExecution,
    OutboxEntry,
    ResourceUsageView,
    StatusChange,
    StoredExecution,
    Submission,
)
from integr8scode_events import StoredTraceContext

T = TypeVar("T")

_TERMINAL = [s.value for s in TERMINAL_STATUSES]
OUTBOX_COLLECTION = "submission_outbox"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def document_of(execution: NewExecution) -> dict[str, Any]:
    """The stored form of a new execution: queued, with that one status in its history."""
    queued = ExecutionStatus.QUEUED.value
    doc: dict[str, Any] = {
        "_id": execution.execution_id,
        "user_id": execution.user_id,
        "status": queued,
        "language": execution.language,
        "language_version": execution.language_version,
        "script_length": execution.script_length,
        "limits": execution.limits.model_dump(),
        "idempotency_key": execution.idempotency_key,
        "created_at": execution.created_at,
        "trace_id": execution.trace_id,
        "correlation_id": execution.execution_id,
        "status_history": [{"status": queued, "at": execution.created_at}],
    }
    if execution.request_fingerprint is not None:
        doc["request_fingerprint"] = execution.request_fingerprint
    if execution.submission is not None:
        doc["submission"] = execution.submission.value
    return doc


def execution_of(doc: dict[str, Any]) -> StoredExecution:
    """A stored execution document as the use cases read it."""
    usage = doc.get("resource_usage")
    submission = doc.get("submission")
    return StoredExecution(
        execution_id=doc["_id"],
        user_id=doc["user_id"],
        status=ExecutionStatus(doc["status"]),
        language=doc["language"],
        language_version=doc["language_version"],
        created_at=_aware(doc["created_at"]),
        correlation_id=doc.get("correlation_id"),
        trace_id=doc.get("trace_id"),
        request_fingerprint=doc.get("request_fingerprint"),
        submission=Submission(submission) if submission else None,
        started_at=_aware_or_none(doc.get("started_at")),
        finished_at=_aware_or_none(doc.get("finished_at")),
        exit_code=doc.get("exit_code"),
        resource_usage=ResourceUsageView.model_validate(usage) if usage else None,
        error=doc.get("error"),
        status_history=tuple(
            StatusChange(status=c["status"], at=_aware(c["at"]))
            for c in doc.get("status_history", [])
        ),
    )


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

    async def create(self, execution: NewExecution) -> bool:
        """Store a new execution; False if one with its id exists already."""
        try:
            await self._c.insert_one(document_of(execution))
        except DuplicateKeyError:
            return False
        except PyMongoError as exc:
            raise DependencyUnavailableError(f"execution store unavailable: {exc}") from exc
        return True

    async def get(self, execution_id: str) -> StoredExecution | None:
        doc: dict[str, Any] | None = await self._call(self._c.find_one({"_id": execution_id}))
        return None if doc is None else execution_of(doc)

    async def list_for_user(
        self, user_id: str | None, limit: int, offset: int
    ) -> tuple[list[StoredExecution], int]:
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
            raise DependencyUnavailableError(f"execution store unavailable: {exc}") from exc
        return [execution_of(d) for d in docs], total

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
            raise DependencyUnavailableError(f"execution store unavailable: {exc}") from exc
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
    ) -> bool:
        """Apply a status change unless the execution is already past it; True when applied.

        One conditional update in the common case (the filter names the statuses this one may
        follow, next to ``_id``, which the Mongo-wire server looks up by index before it
        applies the rest). Only when it matches nothing is the document read: a request the
        broker acknowledged too late was marked failed "not queued", and when it runs after
        all its lifecycle wins over that provisional failure. One execution's events arrive in
        order on one partition and are applied by one consumer.
        """
        previous = [ExecutionStatus.QUEUED.value]
        if status is not ExecutionStatus.RUNNING:
            previous.append(ExecutionStatus.RUNNING.value)
        change = {"status": status.value, "at": at}
        applied = await self._call(
            self._c.update_one(
                {"_id": execution_id, "status": {"$in": previous}},
                {
                    "$set": {"status": status.value, "not_queued": False, **fields},
                    "$push": {"status_history": change},
                },
            )
        )
        if applied.matched_count == 1:
            return True
        if "error" not in fields:
            fields = {**fields, "error": None}  # the provisional failure's text goes with it
        overridden = await self._call(
            self._c.update_one(
                {"_id": execution_id, "status": ExecutionStatus.FAILED.value, "not_queued": True},
                {
                    "$set": {"status": status.value, "not_queued": False, **fields},
                    "$push": {"status_history": change},
                },
            )
        )
        return bool(overridden.matched_count == 1)

    async def set_submission(self, execution_id: str, submission: Submission) -> None:
        """Where the request's publish stands (``pending`` while the first POST waits for the
        broker, then ``acked`` or ``outbox``): what a retry with the same key answers from."""
        await self._call(
            self._c.update_one({"_id": execution_id}, {"$set": {"submission": submission.value}})
        )

    async def to_outbox(self, execution_id: str, event: str, trace: StoredTraceContext) -> None:
        """Keep an unconfirmed request for re-publishing (idempotent), with the trace context
        its re-publishing continues (the request's), as its W3C headers."""
        entry = {
            "_id": execution_id,
            "event": event,
            "trace_context": trace.carrier(),
            "created_at": datetime.now(UTC),
        }
        try:
            await self._outbox.insert_one(entry)
        except DuplicateKeyError:
            return
        except PyMongoError as exc:
            raise DependencyUnavailableError(f"execution store unavailable: {exc}") from exc

    async def outbox_entries(self, limit: int) -> list[OutboxEntry]:
        """The oldest unconfirmed requests (a small collection: only what the broker owes)."""
        entries: list[dict[str, Any]] = await self._call(
            self._outbox.find({}).sort("created_at", ASCENDING).limit(limit).to_list()
        )
        return [
            OutboxEntry(
                execution_id=e["_id"],
                event=e["event"],
                trace=StoredTraceContext.from_document(e.get("trace_context") or {}),
            )
            for e in entries
        ]

    async def confirmed(self, execution_id: str) -> None:
        """The broker acknowledged the request: out of the outbox, and said so on the doc."""
        await self._call(self._outbox.delete_one({"_id": execution_id}))
        await self.set_submission(execution_id, Submission.ACKED)

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
                    "$push": {
                        "status_history": {"status": ExecutionStatus.FAILED.value, "at": now}
                    },
                },
            )
        )

    @staticmethod
    async def _call(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except PyMongoError as exc:
            raise DependencyUnavailableError(f"execution store unavailable: {exc}") from exc
