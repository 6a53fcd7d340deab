"""What replay sessions need from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from integr8scode_event_replay.domain.messages import ReplayMessage, StoredEvent
from integr8scode_event_replay.domain.sessions import (
    Cursor,
    ReplaySession,
    SessionStatus,
)
from integr8scode_event_replay.domain.spec import ReplayFilters


class SessionStore(Protocol):
    """``replay_sessions``: one document per session. Inserted by the admin API, then written
    only by the instance that owns the session (``owner``, with a lease)."""

    async def ensure_indexes(self) -> None: ...

    async def insert(self, session: ReplaySession) -> None: ...

    async def get(self, session_id: str) -> ReplaySession | None: ...

    async def list_page(
        self, status: SessionStatus | None, limit: int, offset: int
    ) -> tuple[list[ReplaySession], int]:
        """A page of sessions, newest first, and how many there are in all."""
        ...

    async def save(self, session: ReplaySession, owner: str) -> None:
        """Write the session's state if ``owner`` still owns it; ``OwnershipLostError`` when
        another instance took it over."""
        ...

    async def orphaned(self, now: datetime) -> list[ReplaySession]:
        """Active sessions nobody owns: released at a shutdown, or whose owner's lease ran out."""
        ...

    async def take_over(self, session: ReplaySession, owner: str, lease_until: datetime) -> bool:
        """Become the owner of an orphaned ``session`` (as read); False when another instance
        was first."""
        ...


class ControlStore(Protocol):
    """``replay_session_controls``: the status an admin last asked for, per session. Written by
    the admin API, read by the session's runner (in whichever instance it runs)."""

    async def request(self, session_id: str, desired: SessionStatus) -> None: ...

    async def requested(self, session_id: str) -> SessionStatus | None: ...


@dataclass(frozen=True)
class EventCount:
    """A count that may have stopped early: ``complete`` False means "at least ``n``"."""

    n: int
    complete: bool


class EventSource(Protocol):
    """The event store, read in (``occurred_at``, ``event_id``) order."""

    async def count(self, filters: ReplayFilters) -> int:
        """All matching events (on FerretDB a scan of the whole store: never on a request)."""
        ...

    async def count_up_to(self, filters: ReplayFilters, limit: int, budget_s: float) -> EventCount:
        """Matching events, counted until ``limit`` or until ``budget_s`` has passed."""
        ...

    async def page(
        self,
        filters: ReplayFilters,
        after: Cursor | None,
        limit: int,
        budget_s: float | None = None,
    ) -> Sequence[StoredEvent]:
        """Up to ``limit`` matching events after ``after`` (from the first when None);
        ``QueryTimeoutError`` when ``budget_s`` is given and runs out."""
        ...


class ReplayPublisher(Protocol):
    """Sends a replayed message and waits for the broker's acknowledgement; raises
    ``PublishFailedError`` when it did not come. ``handed_over`` is called once the producer
    holds the message (messages handed over one after the other keep that order)."""

    async def publish(
        self, message: ReplayMessage, handed_over: Callable[[], object] | None = None
    ) -> None: ...
