"""``SagaStore`` on Mongo: ``sagas`` plus three small collections that carry the guarantees.

Why not ``find_one_and_update``: FerretDB 1.x (the local and CI Mongo-wire server, SQLite
backend) applies an update as read-filter-write of the whole document outside any transaction,
so two instances' conditional updates of one saga can both match ("both claimed it", "both
finished it"). What it does enforce atomically is a unique key: of concurrent inserts of one
``_id`` exactly one succeeds. Every cluster-wide decision is therefore a unique insert:

- ``saga_queue`` {_id: execution_id, user_id, enqueued_at, cancel_requested, saga}: one entry
  per queued saga, written on create and requeue, deleted when claimed or ended. It holds the
  saga's snapshot, so admission reads only this small collection: FerretDB pushes no filter
  down to SQLite, and even an ``_id`` lookup in ``sagas`` costs a scan of its history.
- ``saga_claims`` {_id: execution_id, owner, at, lease_until, cancel_requested}: who runs a
  saga. Inserting it *is* the claim; it is deleted when the saga is requeued, and after the
  saga ends with the next batch of deferred deletes (``DeferredDeletes``). The same
  collection holds take-over markers {_id: "takeover:<execution_id>:<expired lease>"}: of the
  janitors that saw one expired slot, only the one whose insert succeeds recovers it.
- ``saga_outbox`` {_id: execution_id, status, event, error, created_at}: the terminal event.
  Inserting it *is* the end of the saga (exactly one terminal outcome); it is deleted once the
  event is published (by this process's own finish: with the next batch of deferred deletes).
  Published means no outbox entry: the saga carries no flag of its own.
- ``sagas``: the record (status, steps, times, error, the terminal event). Its updates are the
  consequence of a decision taken by an insert above, so at most one writer acts on each. The
  claim's one conditional update (``{_id, status: queued}``) is a check made by the claim's
  holder, not a decision (below).

Orderings that make this race-free (each step is one atomic insert, read or delete):

- finish: insert outbox → read the saga (gone or already terminal: an earlier finish was
  published and its outbox entry deleted — back off) → update the saga → delete its queue entry
  and claim. ``mark_published`` makes sure (repairing after a crash) the saga reads terminal
  *before* the outbox entry goes, so a later finisher whose insert succeeds reads it terminal,
  and a claim taken after the claim's deletion finds the outbox entry or a terminal saga.
- cancel while queued (``finish(only_from=QUEUED)``) against a concurrent claim, Dekker-style:
  the finisher inserts its outbox entry, then looks for a claim; the claimer inserts its claim,
  then looks for an outbox entry. Whichever read comes second sees the other's insert, so at
  most one goes on (the loser deletes what it inserted); if both back off the saga stays queued
  and the cancel falls back to the cancel flag, which admission honours.
- claim: insert claim → no outbox entry → update the saga to ``reserved`` *if it still reads
  queued* → take the queue entry (``find_one_and_delete``: its cancel flag comes with it). The
  claim's check: FerretDB evaluates the update's filter on its read of the document and
  writes by ``_id``, so the filter is as good as the read it replaces (a saga ended long ago, a
  stale queue entry left by a redelivery racing an earlier admission), and no other instance
  moves a claimed saga meanwhile. A requeue puts the queue entry and the ``queued`` status back
  *before* deleting the claim, so whoever claims next finds a consistent saga.

Exclusive: while an instance holds a saga's claim and its slot lease has not run out, nobody
else can end or move that saga — a recoverer needs the lease expired, a cancel-while-queued
backs off on the claim (Dekker, above), and every other finisher is the claim's holder. So the
run's own step and finish (``exclusive_until``: the claim-time lease less half a lease, an
allowance for clock skew between instances) write without first reading that the saga has not
ended; past that instant, or without it, they read as before.

A finisher that stops right after its outbox insert still ends the saga: the outbox sweep
publishes its event and ``mark_published`` completes the saga document.

What still needs the in-process lock: updates of one ``sagas`` document from this process
(e.g. a step of a run and a cancel flag) would overwrite each other on FerretDB; they go one at
a time (read and update by ``_id``: a filter on another field decodes the whole collection).
Inserts and deletes need no lock. Across instances one such overwrite remains possible: an owner
presumed dead (its slot lease ran out) but still alive can write a step over the terminal status
its recoverer just stored. The outcome stays single (the outbox decides); only that saga
document's ``status`` may then be stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Collection, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_coordinator.adapters.deferred_deletes import DeferredDeletes
from integr8scode_coordinator.domain.errors import StoreUnavailableError
from integr8scode_coordinator.domain.saga import (
    ACTIVE,
    TERMINAL,
    ExecutionRequest,
    Saga,
    SagaStatus,
)
from integr8scode_events import StoredTraceContext

T = TypeVar("T")

_TERMINAL = [s.value for s in TERMINAL]
_ACTIVE = [s.value for s in ACTIVE]
_MIGRATED = "migration:saga-collections-v1"
_FINISHED_KEPT = 1024  # finished, not yet marked published: more than any instance runs at once


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _exclusive(until: datetime | None) -> bool:
    """Whether the caller still holds a saga exclusively (claim and live lease) by its clock."""
    return until is not None and datetime.now(UTC) < until


def _to_saga(doc: dict[str, Any], claim: dict[str, Any] | None = None) -> Saga:
    saga = Saga(
        execution_id=doc["_id"],
        user_id=doc["user_id"],
        correlation_id=doc["correlation_id"],
        request=ExecutionRequest.from_document(doc["request"]),
        status=SagaStatus(doc["status"]),
        enqueued_at=_aware(doc["enqueued_at"]) or datetime.now(UTC),
        trace=StoredTraceContext.from_document(doc),
        owner=doc.get("owner"),
        lease_until=_aware(doc.get("lease_until")),
        cancel_requested=bool(doc.get("cancel_requested")),
        steps=list(doc.get("steps", [])),
        started_at=_aware(doc.get("started_at")),
        finished_at=_aware(doc.get("finished_at")),
        error=doc.get("error"),
    )
    if claim is not None and not saga.status.terminal:
        # The claim is the truth about ownership (the saga document follows it).
        saga.owner, saga.lease_until = claim.get("owner"), _aware(claim.get("lease_until"))
    return saga


def _queue_entry(doc: dict[str, Any]) -> dict[str, Any]:
    """The queue entry of a saga document: enough to admit it without reading ``sagas``."""
    return {
        "_id": doc["_id"],
        "user_id": doc["user_id"],
        "enqueued_at": doc["enqueued_at"],
        "cancel_requested": bool(doc.get("cancel_requested")),
        "saga": {
            "correlation_id": doc["correlation_id"],
            "request": doc["request"],
            **StoredTraceContext.from_document(doc).fields(),
            "steps": list(doc.get("steps", [])),
        },
    }


def _from_queue_entry(entry: dict[str, Any]) -> Saga:
    snapshot = entry["saga"]
    return _to_saga(
        {
            "_id": entry["_id"],
            "user_id": entry["user_id"],
            "enqueued_at": entry["enqueued_at"],
            "status": SagaStatus.QUEUED.value,
            "cancel_requested": entry.get("cancel_requested", False),
            **snapshot,
        }
    )


@dataclass(frozen=True)
class _Finished:
    """What this process's finish of a saga wrote, and whether it wrote as the exclusive holder."""

    terminal: dict[str, Any]
    exclusive: bool


@dataclass
class _SagaLock:
    """One saga's in-process write lock and how many coroutines hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class MongoSagaStore:
    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        database: AsyncDatabase[dict[str, Any]] | None = None,
        deletes: DeferredDeletes | None = None,
    ) -> None:
        self._c = collection
        db = database if database is not None else collection.database
        self._queue = db["saga_queue"]
        self._claims = db["saga_claims"]
        self._outbox = db["saga_outbox"]
        # Updates of one saga document from this process go one at a time (module docstring).
        # One lock per saga document: updates of one saga never interleave in this process,
        # while different sagas are written concurrently.
        self._locks: dict[str, _SagaLock] = {}
        # Terminal fields of sagas this process finished and has not marked published yet.
        self._finished: dict[str, _Finished] = {}
        self._deletes = deletes if deletes is not None else DeferredDeletes()

    async def ensure_indexes(self) -> None:
        try:
            await self._queue.create_index([("enqueued_at", ASCENDING)])
            await self._outbox.create_index([("created_at", ASCENDING)])
            await self._migrate()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not prepare the saga collections: {exc}") from exc

    async def _migrate(self) -> None:
        """Once per database: fill the queue, claims and outbox from sagas stored before they
        existed (one scan of ``sagas``; the marker's unique insert makes it run once)."""
        try:
            await self._claims.insert_one({"_id": _MIGRATED, "at": datetime.now(UTC)})
        except DuplicateKeyError:
            return
        async for doc in self._c.find({}):
            with contextlib.suppress(DuplicateKeyError):
                if doc["status"] == SagaStatus.QUEUED.value:
                    await self._queue.insert_one(_queue_entry(doc))
                elif doc["status"] in _ACTIVE and doc.get("owner"):
                    await self._claims.insert_one(
                        {
                            "_id": doc["_id"],
                            "owner": doc["owner"],
                            "at": datetime.now(UTC),
                            "lease_until": doc.get("lease_until"),
                            "cancel_requested": bool(doc.get("cancel_requested")),
                        }
                    )
                elif doc.get("terminal_published") is False and doc.get("terminal_event"):
                    await self._outbox.insert_one(
                        {
                            "_id": doc["_id"],
                            "status": doc["status"],
                            "event": doc["terminal_event"],
                            "error": doc.get("error"),
                            "created_at": doc.get("finished_at") or datetime.now(UTC),
                        }
                    )

    # -- create and read ---------------------------------------------------------------------

    async def create(self, saga: Saga) -> bool:
        doc = {
            "_id": saga.execution_id,
            "user_id": saga.user_id,
            "correlation_id": saga.correlation_id,
            "request": asdict(saga.request),
            "status": saga.status.value,
            "steps": saga.steps,
            "enqueued_at": saga.enqueued_at,
            **saga.trace.fields(),
            "owner": None,
            "lease_until": None,
            "cancel_requested": False,
        }
        created = True
        try:
            await self._c.insert_one(doc)
        except DuplicateKeyError:
            created = False
            # A redelivery: if a crash came between the saga and its queue entry, add it now.
            stored = await self._c.find_one({"_id": saga.execution_id})
            if stored is None or stored["status"] != SagaStatus.QUEUED.value:
                return False
            if await self._claims.find_one({"_id": saga.execution_id}) is not None:
                return False
            doc = stored
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not store saga: {exc}") from exc
        if doc["status"] == SagaStatus.QUEUED.value:
            await self._insert(self._queue, _queue_entry(doc))
        return created

    async def get(self, execution_id: str) -> Saga | None:
        doc = await self._call(self._c.find_one({"_id": execution_id}))
        if doc is None:
            return None
        claim = await self._call(self._claims.find_one({"_id": execution_id}))
        return _to_saga(doc, claim)

    async def oldest_queued(self, limit: int, exclude_users: Collection[str] = ()) -> list[Saga]:
        query: dict[str, Any] = {}
        if exclude_users:
            query["user_id"] = {"$nin": list(exclude_users)}
        try:
            cursor = self._queue.find(query).sort("enqueued_at", ASCENDING)
            entries = await cursor.limit(limit).to_list()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read the queue: {exc}") from exc
        return [_from_queue_entry(e) for e in entries]

    # -- claim, steps, requeue ---------------------------------------------------------------

    async def claim_queued(self, execution_id: str, owner: str, lease_until: datetime) -> bool:
        claim = {
            "_id": execution_id,
            "owner": owner,
            "at": datetime.now(UTC),
            "lease_until": lease_until,
            "cancel_requested": False,
        }
        if not await self._insert(self._claims, claim):
            # Someone holds it, unless it is our own claim from an attempt the store failed
            # midway (the insert landed, the answer didn't): admission is sequential here, so
            # we carry on with it. Another owner's leftover is cleared by the janitor, with
            # that owner's expired slot (``requeue``).
            held = await self._call(self._claims.find_one({"_id": execution_id}, {"owner": 1}))
            if held is None or held.get("owner") != owner:
                return False
            await self._call(
                self._claims.update_one(
                    {"_id": execution_id, "owner": owner}, {"$set": {"lease_until": lease_until}}
                )
            )
        if await self._call(self._outbox.find_one({"_id": execution_id}, {"_id": 1})):
            await self._delete(self._claims, {"_id": execution_id, "owner": owner})
            return False  # it is being (or was just) ended: cancelled while queued
        # Only we can move it now (we hold the claim). It must still read queued (a saga that
        # ended after its outbox entry was published does not, and a redelivery racing an
        # earlier admission can have left a stale queue entry): the update's filter checks it,
        # so no read first (module docstring, "the claim's check").
        moved = await self._write(
            execution_id,
            self._c.update_one(
                {"_id": execution_id, "status": SagaStatus.QUEUED.value},
                {
                    "$set": {
                        "status": SagaStatus.RESERVED.value,
                        "owner": owner,
                        "lease_until": lease_until,
                    },
                    "$push": {"steps": "reserve_slot"},
                },
            ),
        )
        if moved.matched_count == 0:
            await self._delete(self._queue, {"_id": execution_id})  # a stale entry
            await self._delete(self._claims, {"_id": execution_id, "owner": owner})
            return False
        entry = await self._call(self._queue.find_one_and_delete({"_id": execution_id}))
        if entry is not None and entry.get("cancel_requested"):
            # Flagged while queued: let the owner's heartbeat see it (cancel_requested). A flag
            # set after the entry went reaches the claim itself (``request_cancel``'s order).
            await self._call(
                self._claims.update_one({"_id": execution_id}, {"$set": {"cancel_requested": True}})
            )
        return True

    async def record_step(
        self,
        execution_id: str,
        step: str,
        status: SagaStatus,
        *,
        exclusive_until: datetime | None = None,
        **fields: Any,
    ) -> None:
        update = {"$set": {"status": status.value, **fields}, "$push": {"steps": step}}
        if _exclusive(exclusive_until):
            # Nobody else can have ended it (module docstring, "exclusive"): no read.
            await self._write(execution_id, self._c.update_one({"_id": execution_id}, update))
            return
        await self._update_unless_terminal(execution_id, update)

    async def take_over(self, execution_id: str, expired_lease: datetime) -> bool:
        lease = expired_lease if expired_lease.tzinfo else expired_lease.replace(tzinfo=UTC)
        marker = {
            "_id": f"takeover:{execution_id}:{lease.astimezone(UTC).isoformat()}",
            "at": datetime.now(UTC),
        }
        return await self._insert(self._claims, marker)

    async def requeue(self, execution_id: str, owner: str) -> bool:
        claim = await self._call(self._claims.find_one({"_id": execution_id}))
        if claim is None or claim.get("owner") != owner:
            return False
        doc = await self._call(self._c.find_one({"_id": execution_id}))
        if doc is None or doc["status"] not in (SagaStatus.QUEUED.value, SagaStatus.RESERVED.value):
            return False
        # Queue entry and status first, the claim last: the next claimer finds it queued.
        await self._insert(self._queue, _queue_entry(doc))
        await self._update_unless_terminal(
            execution_id,
            {
                "$set": {"status": SagaStatus.QUEUED.value, "owner": None, "lease_until": None},
                "$push": {"steps": "requeue"},
            },
        )
        await self._delete(self._claims, {"_id": execution_id, "owner": owner})
        return True

    # -- terminal outcome and outbox ---------------------------------------------------------

    async def finish(
        self,
        execution_id: str,
        status: SagaStatus,
        event: dict[str, Any],
        *,
        only_from: SagaStatus | None = None,
        error: str | None = None,
        steps: Sequence[str] = (),
        exclusive_until: datetime | None = None,
    ) -> bool:
        now, token = datetime.now(UTC), uuid.uuid4().hex
        entry = {
            "_id": execution_id,
            "status": status.value,
            "event": event,
            "error": error,
            "created_at": now,
            "token": token,  # which finisher inserted it, to take back only our own
        }
        if not await self._insert(self._outbox, entry):
            return False  # it has ended (or is ending) already
        if (
            only_from is SagaStatus.QUEUED
            and await self._call(self._claims.find_one({"_id": execution_id}, {"_id": 1}))
            is not None
        ):
            await self._delete(self._outbox, {"_id": execution_id, "token": token})
            return False  # claimed meanwhile: it is its claimer's now
        # We alone got here (read and update by ``_id`` only, as in claim_queued). It must not
        # have ended earlier (a finish whose outbox entry was published and deleted since),
        # which an exclusive holder knows without reading (module docstring, "exclusive").
        exclusive = only_from is None and _exclusive(exclusive_until)
        if not exclusive:
            doc = await self._call(self._c.find_one({"_id": execution_id}, {"status": 1}))
            if (
                doc is None
                or doc["status"] in _TERMINAL
                or (only_from is not None and doc["status"] != only_from.value)
            ):
                await self._delete(self._outbox, {"_id": execution_id, "token": token})
                return False
        terminal = self._terminal_fields(status.value, event, error, now)
        await self._write(
            execution_id,
            self._c.update_one(
                {"_id": execution_id},
                {
                    "$set": terminal,
                    "$push": {"steps": {"$each": [*steps, f"finish:{status.value}"]}},
                },
            ),
        )
        if not exclusive:
            # An exclusive holder's claim removed the queue entry (``claim_queued`` deletes it
            # last, and only a recoverer past the lease requeues): nothing to delete.
            await self._delete(self._queue, {"_id": execution_id})
        # The claim decides nothing more (the saga is terminal): it goes with the next batch.
        self._deletes.delete(self._claims, execution_id)
        self._remember_finished(execution_id, _Finished(terminal, exclusive))
        return True

    def _remember_finished(self, execution_id: str, finished: _Finished) -> None:
        """Keep what this process's finish wrote until ``mark_published``: its outbox entry is
        immutable, so ``mark_published`` needs neither to read it nor the saga (bounded: an
        entry another instance published is dropped oldest first, and is read again if asked)."""
        self._finished[execution_id] = finished
        while len(self._finished) > _FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]

    @staticmethod
    def _terminal_fields(
        status: str, event: dict[str, Any], error: str | None, finished_at: datetime
    ) -> dict[str, Any]:
        return {
            "status": status,
            "finished_at": finished_at,
            "terminal_event": event,
            "owner": None,
            "lease_until": None,
            "error": error,
        }

    async def mark_published(self, execution_id: str) -> None:
        """The terminal event is out: its outbox entry may go, once the saga reads terminal
        (published = no outbox entry; module docstring)."""
        finished = self._finished.pop(execution_id, None)
        if finished is not None:
            # Finished by this process (its queue entry and claim are gone). An exclusive
            # finish was the saga's only writer: the saga reads what it wrote, terminal. Any
            # other may have raced an owner presumed dead (module docstring): write back the
            # terminal fields it stored, without reading, as the read path below repairs.
            if not finished.exclusive:
                await self._write(
                    execution_id,
                    self._c.update_one({"_id": execution_id}, {"$set": finished.terminal}),
                )
            self._deletes.delete(self._outbox, execution_id)
            return
        if execution_id in self._deletes.waiting(self._outbox):
            return  # marked here already; its delete waits for the next batch
        entry = await self._call(self._outbox.find_one({"_id": execution_id}))
        if entry is None:
            return
        doc = await self._call(self._c.find_one({"_id": execution_id}, {"status": 1}))
        if doc is not None and doc["status"] not in _TERMINAL:
            # Its finisher stopped between the outbox entry and the saga: complete it first.
            terminal = self._terminal_fields(
                entry["status"], entry["event"], entry.get("error"), entry["created_at"]
            )
            await self._delete(self._queue, {"_id": execution_id})
            await self._delete(self._claims, {"_id": execution_id})
            await self._write(
                execution_id, self._c.update_one({"_id": execution_id}, {"$set": terminal})
            )
        # Last: until now the outbox entry kept any second finisher out (module docstring).
        await self._delete(self._outbox, {"_id": execution_id})

    async def close(self) -> None:
        """Send the deletes that wait (``DeferredDeletes``); the store takes no more."""
        await self._deletes.close()

    async def unpublished_terminal(self, older_than: datetime) -> list[dict[str, Any]]:
        try:
            docs = await self._outbox.find(
                {"created_at": {"$lt": older_than}}, {"_id": 1, "event": 1}
            ).to_list(100)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read the outbox: {exc}") from exc
        published = self._deletes.waiting(self._outbox)
        return [d["event"] for d in docs if d.get("event") and d["_id"] not in published]

    # -- cancel flags ------------------------------------------------------------------------

    async def request_cancel(self, execution_id: str) -> None:
        # Saga first, claim last: a claim taken meanwhile reads the saga's flag (claim_queued).
        await self._update_unless_terminal(execution_id, {"$set": {"cancel_requested": True}})
        for collection in (self._queue, self._claims):
            await self._call(
                collection.update_one({"_id": execution_id}, {"$set": {"cancel_requested": True}})
            )

    async def cancel_requested(self, owner: str, execution_ids: Sequence[str]) -> list[str]:
        if not execution_ids:
            return []
        try:
            docs = await self._claims.find(
                {"_id": {"$in": list(execution_ids)}, "cancel_requested": True}, {"_id": 1}
            ).to_list(len(execution_ids))
        except PyMongoError as exc:
            raise StoreUnavailableError(f"could not read cancel flags: {exc}") from exc
        ended = self._deletes.waiting(self._claims)
        return [d["_id"] for d in docs if d["_id"] not in ended]

    async def flush_deletes(self) -> None:
        """Send the deferred deletes now (tests, and anything that must see them gone)."""
        await self._deletes.flush()

    # -- helpers -----------------------------------------------------------------------------

    async def _insert(self, collection: AsyncCollection[dict[str, Any]], doc: Any) -> bool:
        """A unique insert: True if this call created the document."""
        try:
            await collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        except PyMongoError as exc:
            raise StoreUnavailableError(f"saga store unavailable: {exc}") from exc
        return True

    async def _delete(
        self, collection: AsyncCollection[dict[str, Any]], query: dict[str, Any]
    ) -> None:
        await self._call(collection.delete_one(query))

    async def _update_unless_terminal(self, execution_id: str, update: dict[str, Any]) -> None:
        """Update a saga that has not ended. Read, then update by ``_id`` (a filter on any other
        field makes FerretDB decode the whole collection), both under the in-process lock so
        no update of this process comes in between."""
        try:
            async with self._lock(execution_id):
                doc = await self._call(self._c.find_one({"_id": execution_id}, {"status": 1}))
                if doc is not None and doc["status"] not in _TERMINAL:
                    await self._call(self._c.update_one({"_id": execution_id}, update))
        except PyMongoError as exc:
            raise StoreUnavailableError(f"saga store unavailable: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _lock(self, execution_id: str) -> AsyncIterator[None]:
        # Counted, not judged by ``locked()``: between a release and the next waiter's wake-up
        # the lock reads unlocked, and dropping it then let a newcomer take a fresh lock while
        # the waiter still went ahead on the old one.
        entry = self._locks.get(execution_id)
        if entry is None:
            entry = self._locks[execution_id] = _SagaLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0 and self._locks.get(execution_id) is entry:
                del self._locks[execution_id]

    async def _write(self, execution_id: str, update: Coroutine[Any, Any, Any]) -> Any:
        try:
            async with self._lock(execution_id):
                return await self._call(update)
        finally:
            update.close()  # not started if cancelled while waiting: no "never awaited" warning

    @staticmethod
    async def _call(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except PyMongoError as exc:
            raise StoreUnavailableError(f"saga store unavailable: {exc}") from exc
