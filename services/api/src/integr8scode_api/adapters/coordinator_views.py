"""Read-only views of collections the coordinator owns: ``runtimes``, ``saga_queue`` (queue
positions) and ``execution_results`` (full output). The API never writes them."""

from __future__ import annotations

import time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.executions import (
    CompileView,
    ExecutionResult,
    ResourceUsageView,
    Runtime,
)


class CoordinatorViews:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], runtimes_ttl_s: float = 5.0) -> None:
        self._db = db
        self._ttl = runtimes_ttl_s
        self._runtimes: list[Runtime] = []
        self._loaded_at = float("-inf")

    async def runtimes(self) -> list[Runtime]:
        """Runtimes the coordinators registered (cached for a few seconds)."""
        if time.monotonic() - self._loaded_at < self._ttl and self._runtimes:
            return self._runtimes
        try:
            docs = await self._db["runtimes"].find({}).sort("language", 1).to_list()
        except PyMongoError as exc:
            raise DependencyUnavailableError(f"runtime catalog unavailable: {exc}") from exc
        self._runtimes = [
            Runtime(
                language=d["language"],
                versions=sorted(d.get("versions", [])),
                default_version=d["default_version"],
                script_file=d.get("script_file") or None,
                compiled=bool(d.get("compiled")),
                compile_limits=d.get("compile_limits") or None,
                full_versions=sorted(d.get("full_versions", [])),
            )
            for d in docs
        ]
        self._loaded_at = time.monotonic()
        return self._runtimes

    async def result(self, execution_id: str) -> ExecutionResult | None:
        try:
            doc: dict[str, Any] | None = await self._db["execution_results"].find_one(
                {"_id": execution_id}
            )
        except PyMongoError as exc:
            raise DependencyUnavailableError(f"result store unavailable: {exc}") from exc
        if doc is None:
            return None
        usage = doc.get("resource_usage")
        return ExecutionResult(
            stdout=doc.get("stdout"),
            stderr=doc.get("stderr"),
            stdout_truncated=bool(doc.get("stdout_truncated")),
            stderr_truncated=bool(doc.get("stderr_truncated")),
            resource_usage=ResourceUsageView.model_validate(usage) if usage else None,
            stdout_raw=_bytes_or_none(doc.get("stdout_raw")),
            stderr_raw=_bytes_or_none(doc.get("stderr_raw")),
            verdict=doc.get("verdict"),
            error=doc.get("error"),
            compile=CompileView.model_validate(doc["compile"]) if doc.get("compile") else None,
        )

    async def queue_position(self, execution_id: str) -> int | None:
        """How many queued executions are ahead of this one (None once it left the queue).
        Reads the coordinator's small ``saga_queue``, not the history in ``sagas``."""
        queue = self._db["saga_queue"]
        try:
            entry = await queue.find_one({"_id": execution_id}, {"enqueued_at": 1})
            if entry is None:
                return None
            ahead = await queue.count_documents({"enqueued_at": {"$lt": entry["enqueued_at"]}})
        except PyMongoError as exc:
            raise DependencyUnavailableError(f"queue unavailable: {exc}") from exc
        return ahead


def _bytes_or_none(value: object) -> bytes | None:
    return bytes(value) if isinstance(value, bytes | bytearray) else None
