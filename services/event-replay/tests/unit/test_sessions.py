"""The session state machine, the admin actions it accepts, and what the cap means."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integr8scode_event_replay.domain.errors import InvalidTransitionError
from integr8scode_event_replay.domain.sessions import (
    TERMINAL,
    TRANSITIONS,
    Action,
    ReplaySession,
    SessionStatus,
    check_action,
)
from integr8scode_event_replay.domain.spec import ReplayFilters, SessionSpec

S = SessionStatus
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def session(status: SessionStatus = S.CREATED, *, matched: int = 0, cap: int = 10) -> ReplaySession:
    return ReplaySession(
        id="s-1",
        spec=SessionSpec(filters=ReplayFilters(execution_id="e"), max_events=cap),
        status=status,
        created_at=NOW,
        created_by="admin",
        matched=matched,
        updated_at=NOW,
    )


ALLOWED = {
    (S.CREATED, S.RUNNING),
    (S.CREATED, S.COMPLETED),
    (S.CREATED, S.CANCELLED),
    (S.CREATED, S.FAILED),
    (S.RUNNING, S.PAUSED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.FAILED),
    (S.PAUSED, S.RUNNING),
    (S.PAUSED, S.CANCELLED),
    (S.PAUSED, S.FAILED),
}


@pytest.mark.parametrize("source", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_the_documented_transitions_are_allowed(
    source: SessionStatus, target: SessionStatus
) -> None:
    moving = session(source)
    if (source, target) in ALLOWED:
        moving.transition(target, NOW)
        assert moving.status is target
    else:
        with pytest.raises(InvalidTransitionError):
            moving.transition(target, NOW)
        assert moving.status is source
    assert {(a, b) for a, bs in TRANSITIONS.items() for b in bs} == ALLOWED


def test_transitions_stamp_started_and_finished_once() -> None:
    moving = session()
    moving.transition(S.RUNNING, NOW)
    moving.transition(S.PAUSED, NOW.replace(hour=1))
    moving.transition(S.RUNNING, NOW.replace(hour=2))
    assert moving.started_at == NOW
    assert moving.finished_at is None
    moving.transition(S.COMPLETED, NOW.replace(hour=3))
    assert moving.finished_at == NOW.replace(hour=3)
    assert moving.terminal
    assert {S.COMPLETED, S.CANCELLED, S.FAILED} == TERMINAL


@pytest.mark.parametrize(
    ("status", "action", "ok"),
    [
        (S.RUNNING, Action.PAUSE, True),
        (S.CREATED, Action.PAUSE, False),
        (S.PAUSED, Action.PAUSE, False),
        (S.PAUSED, Action.RESUME, True),
        (S.RUNNING, Action.RESUME, False),
        (S.CREATED, Action.CANCEL, True),
        (S.RUNNING, Action.CANCEL, True),
        (S.PAUSED, Action.CANCEL, True),
        (S.COMPLETED, Action.CANCEL, False),
        (S.CANCELLED, Action.RESUME, False),
        (S.FAILED, Action.PAUSE, False),
    ],
)
def test_actions_are_accepted_only_from_their_statuses(
    status: SessionStatus, action: Action, ok: bool
) -> None:
    if ok:
        check_action(status, action)
    else:
        with pytest.raises(InvalidTransitionError, match=f"can't {action.value}"):
            check_action(status, action)


def test_a_dry_run_accepts_no_action() -> None:
    with pytest.raises(InvalidTransitionError, match="dry run"):
        check_action(S.COMPLETED, Action.CANCEL, dry_run=True)


def test_actions_name_the_status_they_lead_to() -> None:
    assert Action.PAUSE.desired is S.PAUSED
    assert Action.RESUME.desired is S.RUNNING
    assert Action.CANCEL.desired is S.CANCELLED


def test_the_cap_counts_every_event_handled() -> None:
    capped = session(matched=25, cap=10)
    assert capped.capped
    assert capped.planned == 10
    capped.published, capped.skipped, capped.failed = 6, 2, 1
    assert capped.remaining_allowed == 1
    capped.published += 5
    assert capped.remaining_allowed == 0
    uncapped = session(matched=3, cap=10)
    assert not uncapped.capped
    assert uncapped.planned == 3
