"""Language and version of an execution from the API's ``executions`` record (read-only, by
``_id``): terminal events don't carry them. A missing record gives None (the summary then
says ``unknown``)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from integr8scode_notifier.domain.errors import StoreUnavailableError
from integr8scode_notifier.domain.summary import UNKNOWN, ExecutionFacts

COLLECTION = "executions"


class MongoExecutionSource:
    """``ExecutionSource`` on the API's ``executions`` collection."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection

    async def facts(self, execution_id: str) -> ExecutionFacts | None:
        try:
            doc = await self._c.find_one(
                {"_id": execution_id}, {"language": 1, "language_version": 1}
            )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"execution store unavailable: {exc}") from exc
        if doc is None:
            return None
        return ExecutionFacts(
            language=str(doc.get("language") or UNKNOWN),
            language_version=str(doc.get("language_version") or UNKNOWN),
        )
