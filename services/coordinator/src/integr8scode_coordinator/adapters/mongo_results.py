"""``ResultStore`` on Mongo: collection ``execution_results`` (full, capped output)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_coordinator.domain.errors import StoreUnavailableError


class MongoResultStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection

    async def save(self, execution_id: str, document: dict[str, Any]) -> None:
        """Insert; replace only when a document is there already (a retry after the store
        failed to answer, or a run recovered elsewhere). An upsert would cost the Mongo-wire
        server a read and a transaction every time."""
        try:
            try:
                await self._c.insert_one({**document, "_id": execution_id})
            except DuplicateKeyError:
                await self._c.replace_one({"_id": execution_id}, document)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not store the result: {exc}") from exc
