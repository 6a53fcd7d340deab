"""The recovery pass is housekeeping: it reads the sessions with client instrumentation
suppressed (it was a ``find replay_sessions`` root trace every few seconds), while a session it
adopts runs in a context of its own with instrumentation on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from integr8scode_event_replay.domain.sessions import ReplaySession
from integr8scode_event_replay.domain.sessions import SessionStatus as S
from integr8scode_events import EventEnvelope

if TYPE_CHECKING:
    from conftest import Harness

Lifecycle = Callable[..., list[EventEnvelope]]


async def test_the_recovery_pass_is_untraced_and_the_adopted_run_is_not(
    harness: Harness, make_lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.events.add(*make_lifecycle())
    orphan = harness.new_session()
    harness.sessions.docs[orphan.id].owner = "dead-instance"
    harness.sessions.docs[orphan.id].lease_until = datetime.now(UTC) - timedelta(seconds=1)
    seen: dict[str, list[bool]] = {"orphaned": [], "take_over": [], "save": []}
    orphaned, take_over, save = (
        harness.sessions.orphaned,
        harness.sessions.take_over,
        harness.sessions.save,
    )

    async def record_orphaned(now: datetime) -> list[ReplaySession]:
        seen["orphaned"].append(is_instrumentation_enabled())
        return await orphaned(now)

    async def record_take_over(session: ReplaySession, owner: str, until: datetime) -> bool:
        seen["take_over"].append(is_instrumentation_enabled())
        return await take_over(session, owner, until)

    async def record_save(session: ReplaySession, owner: str) -> None:
        seen["save"].append(is_instrumentation_enabled())
        await save(session, owner)

    monkeypatch.setattr(harness.sessions, "orphaned", record_orphaned)
    monkeypatch.setattr(harness.sessions, "take_over", record_take_over)
    monkeypatch.setattr(harness.sessions, "save", record_save)

    assert await harness.pool.recover() == 1
    await harness.wait_status(orphan.id, S.COMPLETED)

    assert seen["orphaned"] == [False]
    assert seen["take_over"] == [False]
    assert True in seen["save"]  # the adopted run's status changes are traced
    assert is_instrumentation_enabled()
