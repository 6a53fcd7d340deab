"""A replay session: its state machine, its progress and where it stands.

::

    created ──▶ running ⇄ paused
       │           │        │
       └───────────┴────────┴──▶ cancelled | failed;   running ──▶ completed

A dry run goes ``created ──▶ completed`` at once. Pause, resume and cancel are requests an
admin makes; the session's runner applies them between two messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from integr8scode_event_replay.domain.errors import InvalidTransitionError
from integr8scode_event_replay.domain.spec import SessionSpec


class SessionStatus(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


TERMINAL = frozenset({SessionStatus.COMPLETED, SessionStatus.CANCELLED, SessionStatus.FAILED})
ACTIVE = frozenset(set(SessionStatus) - TERMINAL)

TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.CREATED: frozenset(
        {
            SessionStatus.RUNNING,
            SessionStatus.COMPLETED,  # a dry run
            SessionStatus.CANCELLED,
            SessionStatus.FAILED,
        }
    ),
    SessionStatus.RUNNING: frozenset(
        {
            SessionStatus.PAUSED,
            SessionStatus.COMPLETED,
            SessionStatus.CANCELLED,
            SessionStatus.FAILED,
        }
    ),
    SessionStatus.PAUSED: frozenset(
        {SessionStatus.RUNNING, SessionStatus.CANCELLED, SessionStatus.FAILED}
    ),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.CANCELLED: frozenset(),
    SessionStatus.FAILED: frozenset(),
}


class Action(enum.StrEnum):
    """What an admin may ask of a session, and the status each one leads to."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"

    @property
    def desired(self) -> SessionStatus:
        return _DESIRED[self]


_DESIRED = {
    Action.PAUSE: SessionStatus.PAUSED,
    Action.RESUME: SessionStatus.RUNNING,
    Action.CANCEL: SessionStatus.CANCELLED,
}
# From which statuses each action is accepted (a created session waits for a slot: it can be
# cancelled, not paused).
_ACCEPTED_FROM = {
    Action.PAUSE: frozenset({SessionStatus.RUNNING}),
    Action.RESUME: frozenset({SessionStatus.PAUSED}),
    Action.CANCEL: frozenset({SessionStatus.CREATED, SessionStatus.RUNNING, SessionStatus.PAUSED}),
}


def check_action(status: SessionStatus, action: Action, *, dry_run: bool = False) -> None:
    """``InvalidTransitionError`` unless ``action`` may be asked of a session in ``status``."""
    if dry_run:
        raise InvalidTransitionError(f"a dry run has nothing to {action.value}")
    if status not in _ACCEPTED_FROM[action]:
        allowed = " or ".join(sorted(s.value for s in _ACCEPTED_FROM[action]))
        raise InvalidTransitionError(
            f"can't {action.value} a session that is {status.value} (only when {allowed})"
        )


@dataclass(frozen=True, order=True)
class Cursor:
    """The last event handled: sessions read events in (``occurred_at``, ``event_id``) order and
    continue after this one."""

    occurred_at: datetime
    event_id: str


@dataclass(frozen=True)
class PreviewItem:
    """One event a dry run would replay."""

    event_id: str
    event_type: str
    execution_id: str | None
    occurred_at: datetime
    target_topic: str | None


@dataclass
class ReplaySession:
    """A session's state. Written by its owner only (the instance running it), which is how
    progress and status stay consistent without transactions."""

    id: str
    spec: SessionSpec
    status: SessionStatus
    created_at: datetime
    created_by: str
    matched: int | None
    """Events that match, or None until the session's background count has finished (a
    session's POST answers before its count: on FerretDB a count is a scan of the store)."""
    updated_at: datetime
    published: int = 0
    skipped: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    cursor: Cursor | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None
    trace_id: str | None = None
    owner: str | None = None
    lease_until: datetime | None = None
    preview: list[PreviewItem] = field(default_factory=list)
    matched_is_lower_bound: bool = False
    """``matched`` is "at least": a dry run's count stopped at its time budget or one past
    the cap (which is all that ``planned`` and ``capped`` need)."""
    preview_complete: bool = True
    """False when a dry run's time budget ran out before its preview was read."""

    @property
    def capped(self) -> bool | None:
        """More events matched than the session may replay: it replays the first
        ``max_events`` in ``occurred_at`` order. None while that is not known."""
        if self.matched is None:
            return None
        if self.matched > self.spec.max_events:
            return True
        return None if self.matched_is_lower_bound else False

    @property
    def planned(self) -> int | None:
        """How many events the session replays (as matched, within the cap); None until
        counted, and "at least" with ``matched_is_lower_bound`` below the cap."""
        return None if self.matched is None else min(self.matched, self.spec.max_events)

    @property
    def processed(self) -> int:
        return self.published + self.skipped + self.failed

    @property
    def remaining_allowed(self) -> int:
        """Events the cap still allows; the cap counts every event handled, whatever the
        outcome, so a session never touches more than ``max_events``."""
        return max(0, self.spec.max_events - self.processed)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def transition(self, to: SessionStatus, now: datetime) -> None:
        """Move to ``to`` and stamp the times; ``InvalidTransitionError`` when not allowed."""
        if to not in TRANSITIONS[self.status]:
            raise InvalidTransitionError(
                f"session {self.id} can't go from {self.status.value} to {to.value}"
            )
        self.status = to
        self.updated_at = now
        if to is SessionStatus.RUNNING and self.started_at is None:
            self.started_at = now
        if to in TERMINAL:
            self.finished_at = now
