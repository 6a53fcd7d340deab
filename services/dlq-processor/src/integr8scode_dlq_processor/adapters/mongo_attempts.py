"""``AttemptClaims`` on Mongo: collection ``dead_letter_attempts``.

One document per attempt, ``_id = "<record id>:<attempt>"``: ``{state: claimed | published |
released, owner, lease_until, generation, partition, offset, ...}``. Claiming is inserting it —
a unique ``_id`` is the one decision FerretDB (no transactions, non-atomic updates) makes once
across concurrent writers. A claim that was released or whose lease lapsed is taken over by
inserting a marker ``"<record id>:<attempt>:g<generation + 1>"``: of several instances that
all find the same lapsed claim, exactly one inserts the marker and rewrites the claim; the
generation keeps growing, so every takeover has a marker id of its own. Documents stay as the
record of who published what (small: one per attempt).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_dlq_processor.domain.errors import StoreUnavailableError
from integr8scode_dlq_processor.domain.ports import ClaimOutcome, ClaimResult, Publication

COLLECTION = "dead_letter_attempts"
CLAIMED, PUBLISHED, RELEASED = "claimed", "published", "released"


def attempt_id(record_id: str, attempt: int) -> str:
    return f"{record_id}:{attempt}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class MongoAttemptClaims:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection

    async def ensure_indexes(self) -> None:
        try:
            await self._c.create_index("dead_letter_id")
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not index {COLLECTION}: {exc}") from exc

    async def claim(
        self, record_id: str, attempt: int, owner: str, now: datetime, lease_until: datetime
    ) -> ClaimResult:
        doc_id = attempt_id(record_id, attempt)
        try:
            for _ in range(3):
                claim = {
                    "_id": doc_id,
                    "kind": "claim",
                    "dead_letter_id": record_id,
                    "attempt": attempt,
                    "state": CLAIMED,
                    "owner": owner,
                    "generation": 0,
                    "claimed_at": now,
                    "lease_until": lease_until,
                }
                if await self._insert(claim):
                    return ClaimResult(ClaimOutcome.ACQUIRED)
                existing = await self._c.find_one({"_id": doc_id})
                if existing is None:
                    continue  # gone between our insert and read: insert again
                return await self._existing(existing, owner, now, lease_until)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not claim attempt {doc_id}: {exc}") from exc
        return ClaimResult(ClaimOutcome.BUSY)

    async def _insert(self, doc: dict[str, Any]) -> bool:
        try:
            await self._c.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def _existing(
        self, existing: dict[str, Any], owner: str, now: datetime, lease_until: datetime
    ) -> ClaimResult:
        state = existing.get("state")
        if state == PUBLISHED:
            return ClaimResult(
                ClaimOutcome.PUBLISHED,
                Publication(
                    partition=int(existing["partition"]),
                    offset=int(existing["offset"]),
                    published_at=_aware(existing["published_at"]),
                    trace_id=existing.get("trace_id"),
                ),
            )
        lapsed = _aware(existing["lease_until"]) <= now
        if state != RELEASED and not lapsed:
            return ClaimResult(ClaimOutcome.BUSY)
        generation = int(existing.get("generation", 0)) + 1
        marker = {
            "_id": f"{existing['_id']}:g{generation}",
            "kind": "takeover",
            "dead_letter_id": existing["dead_letter_id"],
            "attempt": existing["attempt"],
            "from_owner": existing.get("owner"),
            "from_state": state,
            "owner": owner,
            "at": now,
        }
        if not await self._insert(marker):
            return ClaimResult(ClaimOutcome.BUSY)  # another instance took it over
        await self._c.update_one(
            {"_id": existing["_id"]},
            {
                "$set": {
                    "state": CLAIMED,
                    "owner": owner,
                    "generation": generation,
                    "claimed_at": now,
                    "lease_until": lease_until,
                }
            },
        )
        return ClaimResult(ClaimOutcome.ACQUIRED)

    async def published(
        self, record_id: str, attempt: int, owner: str, publication: Publication
    ) -> None:
        doc_id = attempt_id(record_id, attempt)
        try:
            await self._c.update_one(
                {"_id": doc_id},
                {
                    "$set": {
                        "state": PUBLISHED,
                        "published_by": owner,
                        "published_at": publication.published_at,
                        "partition": publication.partition,
                        "offset": publication.offset,
                        "trace_id": publication.trace_id,
                    }
                },
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not confirm attempt {doc_id}: {exc}") from exc

    async def release(self, record_id: str, attempt: int, owner: str) -> None:
        doc_id = attempt_id(record_id, attempt)
        try:
            await self._c.update_one(
                {"_id": doc_id, "owner": owner, "state": CLAIMED},
                {"$set": {"state": RELEASED}},
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not release attempt {doc_id}: {exc}") from exc
