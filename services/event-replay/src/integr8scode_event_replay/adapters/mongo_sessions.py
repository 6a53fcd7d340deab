"""``SessionStore`` and ``ControlStore`` on Mongo.

- ``replay_sessions`` {_id: session id, spec fields, status, progress, cursor, owner,
  lease_until, ...}: inserted by the admin API, then written only by its owner, by ``_id`` and
  ``owner`` (FerretDB applies an update as read-filter-write of the whole document, so two
  writers of one document would overwrite each other: there is one at a time).
- ``replay_session_controls`` {_id: session id, desired, requested_at}: the status an admin
  last asked for; written only by the admin API, read by the owner.
- ``replay_session_takeovers`` {_id: "takeover:<session id>:<updated_at seen>"}: of the
  instances that found one orphaned session, only the one whose insert succeeds adopts it (a
  unique insert is the one decision FerretDB makes atomically).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from integr8scode_event_replay.domain.errors import OwnershipLostError, StoreUnavailableError
from integr8scode_event_replay.domain.sessions import (
    ACTIVE,
    Cursor,
    PreviewItem,
    ReplaySession,
    SessionStatus,
)
from integr8scode_event_replay.domain.spec import ReplayFilters, SessionSpec, Speed, Target

SESSIONS = "replay_sessions"
CONTROLS = "replay_session_controls"
TAKEOVERS = "replay_session_takeovers"


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _required(value: datetime | None) -> datetime:
    aware = _aware(value)
    if aware is None:
        raise ValueError("missing timestamp in a stored session")
    return aware


def session_document(session: ReplaySession) -> dict[str, Any]:
    """The stored form of a session."""
    spec, filters = session.spec, session.spec.filters
    return {
        "_id": session.id,
        "status": session.status.value,
        "dry_run": spec.dry_run,
        "reprocess": spec.reprocess,
        "filters": {
            "event_types": list(filters.event_types),
            "execution_id": filters.execution_id,
            "user_id": filters.user_id,
            "from": filters.occurred_from,
            "to": filters.occurred_to,
        },
        "target_topic": spec.target.topic,
        "speed_factor": spec.speed.factor,
        "max_events": spec.max_events,
        "created_at": session.created_at,
        "created_by": session.created_by,
        **state_fields(session),
        "preview": [
            {
                "event_id": item.event_id,
                "event_type": item.event_type,
                "execution_id": item.execution_id,
                "occurred_at": item.occurred_at,
                "target_topic": item.target_topic,
            }
            for item in session.preview
        ],
    }


def state_fields(session: ReplaySession) -> dict[str, Any]:
    """What changes while a session runs (what its owner writes)."""
    cursor = session.cursor
    return {
        "status": session.status.value,
        "updated_at": session.updated_at,
        "matched": session.matched,
        "matched_is_lower_bound": session.matched_is_lower_bound,
        "preview_complete": session.preview_complete,
        "published": session.published,
        "skipped": session.skipped,
        "failed": session.failed,
        "consecutive_failures": session.consecutive_failures,
        "cursor": None
        if cursor is None
        else {"occurred_at": cursor.occurred_at, "event_id": cursor.event_id},
        "started_at": session.started_at,
        "finished_at": session.finished_at,
        "last_error": session.last_error,
        "trace_id": session.trace_id,
        "owner": session.owner,
        "lease_until": session.lease_until,
    }


def session_from_document(doc: Mapping[str, Any]) -> ReplaySession:
    """A session from its stored form."""
    filters = doc.get("filters") or {}
    cursor = doc.get("cursor")
    return ReplaySession(
        id=str(doc["_id"]),
        spec=SessionSpec(
            filters=ReplayFilters(
                event_types=tuple(filters.get("event_types") or ()),
                execution_id=filters.get("execution_id"),
                user_id=filters.get("user_id"),
                occurred_from=_aware(filters.get("from")),
                occurred_to=_aware(filters.get("to")),
            ),
            target=Target(doc.get("target_topic")),
            speed=Speed(doc.get("speed_factor")),
            max_events=int(doc["max_events"]),
            dry_run=bool(doc.get("dry_run")),
            reprocess=bool(doc.get("reprocess")),
        ),
        status=SessionStatus(doc["status"]),
        created_at=_required(doc.get("created_at")),
        created_by=str(doc.get("created_by") or ""),
        matched=None if doc.get("matched") is None else int(doc["matched"]),
        matched_is_lower_bound=bool(doc.get("matched_is_lower_bound")),
        preview_complete=bool(doc.get("preview_complete", True)),
        updated_at=_required(doc.get("updated_at")),
        published=int(doc.get("published") or 0),
        skipped=int(doc.get("skipped") or 0),
        failed=int(doc.get("failed") or 0),
        consecutive_failures=int(doc.get("consecutive_failures") or 0),
        cursor=None
        if not cursor
        else Cursor(_required(cursor.get("occurred_at")), str(cursor.get("event_id"))),
        started_at=_aware(doc.get("started_at")),
        finished_at=_aware(doc.get("finished_at")),
        last_error=doc.get("last_error"),
        trace_id=doc.get("trace_id"),
        owner=doc.get("owner"),
        lease_until=_aware(doc.get("lease_until")),
        preview=[
            PreviewItem(
                event_id=str(item["event_id"]),
                event_type=str(item["event_type"]),
                execution_id=item.get("execution_id"),
                occurred_at=_required(item.get("occurred_at")),
                target_topic=item.get("target_topic"),
            )
            for item in doc.get("preview") or []
        ],
    )


def _unavailable(exc: PyMongoError) -> StoreUnavailableError:
    return StoreUnavailableError(f"session store unavailable: {exc}")


class MongoSessionStore:
    """``SessionStore`` over ``replay_sessions`` and ``replay_session_takeovers``."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._sessions: AsyncCollection[dict[str, Any]] = db[SESSIONS]
        self._takeovers: AsyncCollection[dict[str, Any]] = db[TAKEOVERS]

    async def ensure_indexes(self) -> None:
        try:
            await self._sessions.create_index([("created_at", DESCENDING)])
            await self._sessions.create_index([("status", DESCENDING)])
        except PyMongoError as exc:
            raise _unavailable(exc) from exc

    async def insert(self, session: ReplaySession) -> None:
        try:
            await self._sessions.insert_one(session_document(session))
        except PyMongoError as exc:
            raise _unavailable(exc) from exc

    async def get(self, session_id: str) -> ReplaySession | None:
        try:
            doc = await self._sessions.find_one({"_id": session_id})
        except PyMongoError as exc:
            raise _unavailable(exc) from exc
        return None if doc is None else session_from_document(doc)

    async def list_page(
        self, status: SessionStatus | None, limit: int, offset: int
    ) -> tuple[list[ReplaySession], int]:
        query: dict[str, Any] = {} if status is None else {"status": status.value}
        try:
            total = await self._sessions.count_documents(query)
            found = self._sessions.find(query).sort([("created_at", DESCENDING), ("_id", 1)])
            docs = [doc async for doc in found.skip(offset).limit(limit)]
        except PyMongoError as exc:
            raise _unavailable(exc) from exc
        return [session_from_document(doc) for doc in docs], total

    async def save(self, session: ReplaySession, owner: str) -> None:
        try:
            result = await self._sessions.update_one(
                {"_id": session.id, "owner": owner}, {"$set": state_fields(session)}
            )
        except PyMongoError as exc:
            raise _unavailable(exc) from exc
        if result.matched_count == 0:
            raise OwnershipLostError(f"session {session.id} is no longer owned by {owner}")

    async def orphaned(self, now: datetime) -> list[ReplaySession]:
        try:
            docs = [
                doc
                async for doc in self._sessions.find(
                    {"status": {"$in": [s.value for s in ACTIVE]}, "dry_run": False}
                )
            ]
        except PyMongoError as exc:
            raise _unavailable(exc) from exc
        sessions = [session_from_document(doc) for doc in docs]
        return [
            s for s in sessions if s.owner is None or s.lease_until is None or s.lease_until <= now
        ]

    async def take_over(self, session: ReplaySession, owner: str, lease_until: datetime) -> bool:
        marker = f"takeover:{session.id}:{session.updated_at.astimezone(UTC).isoformat()}"
        now = datetime.now(UTC)
        try:
            await self._takeovers.insert_one({"_id": marker, "owner": owner, "at": now})
        except DuplicateKeyError:
            return False
        except PyMongoError as exc:
            raise _unavailable(exc) from exc
        try:
            result = await self._sessions.update_one(
                {"_id": session.id, "updated_at": session.updated_at},
                {"$set": {"owner": owner, "lease_until": lease_until, "updated_at": now}},
            )
        except PyMongoError as exc:
            raise _unavailable(exc) from exc
        return result.matched_count == 1


class MongoControlStore:
    """``ControlStore`` over ``replay_session_controls``."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._controls: AsyncCollection[dict[str, Any]] = db[CONTROLS]

    async def request(self, session_id: str, desired: SessionStatus) -> None:
        try:
            await self._controls.update_one(
                {"_id": session_id},
                {"$set": {"desired": desired.value, "requested_at": datetime.now(UTC)}},
                upsert=True,
            )
        except PyMongoError as exc:
            raise _unavailable(exc) from exc

    async def requested(self, session_id: str) -> SessionStatus | None:
        try:
            doc = await self._controls.find_one({"_id": session_id})
        except PyMongoError as exc:
            raise _unavailable(exc) from exc
        return None if doc is None else SessionStatus(doc["desired"])
