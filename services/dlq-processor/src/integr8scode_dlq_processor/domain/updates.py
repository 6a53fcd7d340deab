"""Read-modify-write of one record, safe against the other writers of it.

Three parts of the service write a record — the consumer (a new failure), the scheduler (an
attempt) and the admin API — possibly in different instances. Within a process a lock per
record id serialises them; across processes each write is conditional on the ``version`` it
read (optimistic concurrency) and is re-applied to the fresh record when it lost. On FerretDB a
conditional update is itself read-filter-write, so two writes in the same millisecond can still
both pass; the decisions that must be made once (who publishes an attempt) are therefore unique
inserts (``AttemptClaims``), and the transitions accept facts in any order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from integr8scode_dlq_processor.domain.errors import ConcurrentUpdateError, NotFoundError
from integr8scode_dlq_processor.domain.ports import DeadLetterStore
from integr8scode_dlq_processor.domain.records import DeadLetter

_MAX_TRIES = 8


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class KeyedLocks:
    """One ``asyncio.Lock`` per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._entries.setdefault(key, _Entry())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


Change = Callable[[DeadLetter], DeadLetter | None]


class RecordUpdater:
    """Applies a change (usually a function of ``transitions``) to a stored record."""

    def __init__(self, store: DeadLetterStore, locks: KeyedLocks | None = None) -> None:
        self.store = store
        self.locks = locks or KeyedLocks()

    async def update(self, record_id: str, change: Change) -> DeadLetter:
        """Apply ``change`` to the stored record and write it; returns what is stored after.
        ``change`` returning None means "nothing to do". ``NotFoundError`` for an unknown id; the
        change's own exceptions (``ConflictError``, ``StaleRecordError``) pass through."""
        async with self.locks.hold(record_id):
            return await self.update_locked(record_id, change)

    async def update_locked(self, record_id: str, change: Change) -> DeadLetter:
        """``update`` for a caller that already holds the record's lock."""
        for _ in range(_MAX_TRIES):
            current = await self.store.get(record_id)
            if current is None:
                raise NotFoundError(f"no dead letter with id '{record_id}'")
            changed = change(current)
            if changed is None:
                return current
            written = changed.model_copy(update={"version": current.version + 1})
            if await self.store.replace(written, expected_version=current.version):
                return written
        raise ConcurrentUpdateError(f"dead letter {record_id} kept changing; try again")
