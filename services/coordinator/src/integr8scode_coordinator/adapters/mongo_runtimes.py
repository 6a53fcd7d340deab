"""The runtimes this coordinator offers, published for the API (collection ``runtimes``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from integr8scode_coordinator.domain.errors import StoreUnavailableError
from integr8scode_coordinator.sandbox import Runtime, SandboxLimits


class MongoRuntimeCatalog:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection

    async def publish(
        self,
        runtimes: list[Runtime],
        runner: str,
        instance_id: str,
        compile_limits: SandboxLimits | None = None,
    ) -> None:
        """Upsert one document per language (versions merged across instances). A compiled
        language's carries ``compile_limits``: the most its compile phase gets, which a request
        may lower (the api refuses more)."""
        now = datetime.now(UTC)
        compile_doc = (
            None
            if compile_limits is None
            else {
                "timeout_s": compile_limits.timeout_s,
                "memory_mb": compile_limits.memory_mb,
                "cpu_time_s": compile_limits.cpu_time_s or compile_limits.timeout_s,
                "max_processes": compile_limits.max_processes,
                "max_output_kb": compile_limits.max_output_bytes // 1024,
            }
        )
        try:
            for runtime in runtimes:
                await self._c.update_one(
                    {"_id": runtime.language},
                    {
                        "$set": {
                            "language": runtime.language,
                            "default_version": runtime.default_version,
                            "script_file": runtime.script_file,
                            "compiled": runtime.compiled,
                            "compile_limits": compile_doc if runtime.compiled else None,
                            "runner": runner,
                            "updated_at": now,
                            "updated_by": instance_id,
                        },
                        "$addToSet": {
                            "versions": {"$each": list(runtime.versions)},
                            "full_versions": {"$each": list(runtime.full_versions)},
                        },
                    },
                    upsert=True,
                )
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not publish runtimes: {exc}") from exc
