"""``DeadLetterStore`` on Mongo: collection ``dead_letters``, one document per record.

Every write is by ``_id`` (the only filter FerretDB pushes down to an index); updates replace
the document conditional on its ``version``. The value and key are kept as binary, exactly as
they came, for the retry; headers as a list of ``{name, value}`` pairs.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_dlq_processor.domain.errors import StoreUnavailableError
from integr8scode_dlq_processor.domain.ports import CountRow, ListFilter, Page
from integr8scode_dlq_processor.domain.records import DeadLetter, Status

log = logging.getLogger(__name__)

COLLECTION = "dead_letters"
_PENDING = [Status.SCHEDULED.value, Status.RETRYING.value]


def _plain(value: Any) -> Any:
    """Enums as their values, tuples as lists: what BSON stores."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_document(record: DeadLetter) -> dict[str, Any]:
    doc: dict[str, Any] = _plain(record.model_dump(mode="python"))
    doc["_id"] = doc.pop("id")
    return doc


def from_document(doc: dict[str, Any]) -> DeadLetter:
    fields = dict(doc)
    fields["id"] = fields.pop("_id")
    return DeadLetter.model_validate(fields)


def _filter(where: ListFilter) -> dict[str, Any]:
    found = {
        "status": where.status.value if where.status is not None else None,
        "topic": where.topic,
        "event_type": where.event_type,
        "consumer_group": where.consumer_group,
        "execution_id": where.execution_id,
    }
    return {k: v for k, v in found.items() if v is not None}


class MongoDeadLetterStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection

    async def ensure_indexes(self) -> None:
        # MongoDB uses them; FerretDB (local) keeps them but scans for anything but _id.
        try:
            await self._c.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
            await self._c.create_index([("created_at", DESCENDING)])
            await self._c.create_index([("execution_id", ASCENDING)])
            await self._c.create_index([("topic", ASCENDING), ("consumer_group", ASCENDING)])
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not index {COLLECTION}: {exc}") from exc

    async def insert(self, record: DeadLetter) -> bool:
        try:
            await self._c.insert_one(to_document(record))
        except DuplicateKeyError:
            return False
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not store dead letter {record.id}: {exc}") from exc
        return True

    async def get(self, record_id: str) -> DeadLetter | None:
        try:
            doc = await self._c.find_one({"_id": record_id})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read dead letter {record_id}: {exc}") from exc
        return self._record(doc) if doc is not None else None

    async def replace(self, record: DeadLetter, expected_version: int) -> bool:
        try:
            result = await self._c.replace_one(
                {"_id": record.id, "version": expected_version}, to_document(record)
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not update dead letter {record.id}: {exc}") from exc
        return result.matched_count == 1

    async def due(self, now: datetime, limit: int) -> list[DeadLetter]:
        try:
            docs = (
                await self._c.find({"status": {"$in": _PENDING}, "next_attempt_at": {"$lte": now}})
                .sort("next_attempt_at", ASCENDING)
                .limit(limit)
                .to_list()
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read due dead letters: {exc}") from exc
        return self._readable(docs)

    async def page(self, where: ListFilter, limit: int, offset: int) -> Page:
        query = _filter(where)
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
            raise StoreUnavailableError(f"could not list dead letters: {exc}") from exc
        return Page(items=self._readable(docs), total=total)

    async def counts(self) -> list[CountRow]:
        pipeline: list[dict[str, Any]] = [
            {
                "$group": {
                    "_id": {"topic": "$topic", "group": "$consumer_group", "status": "$status"},
                    "count": {"$sum": 1},
                }
            }
        ]
        try:
            rows = await (await self._c.aggregate(pipeline)).to_list()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not count dead letters: {exc}") from exc
        found: list[CountRow] = []
        for row in rows:
            key = row["_id"]
            try:
                status = Status(key.get("status"))
            except ValueError:
                continue  # not a record of ours
            found.append(
                CountRow(
                    topic=key.get("topic"),
                    consumer_group=key.get("group"),
                    status=status,
                    count=int(row["count"]),
                )
            )
        return found

    @staticmethod
    def _readable(docs: list[dict[str, Any]]) -> list[DeadLetter]:
        """The records of ``docs``; one that does not read (written by hand, or by a version
        with another schema) is logged and left out, so it can't stop the scheduler."""
        records = []
        for doc in docs:
            try:
                records.append(from_document(doc))
            except ValidationError:
                log.exception("dead letter %s is not readable; skipped", doc.get("_id"))
        return records

    @staticmethod
    def _record(doc: dict[str, Any]) -> DeadLetter:
        try:
            return from_document(doc)
        except ValidationError as exc:
            raise StoreUnavailableError(
                f"dead letter {doc.get('_id')} is not readable: {exc}"
            ) from exc
