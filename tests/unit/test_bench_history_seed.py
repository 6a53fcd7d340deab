"""bench/history_seed.py writes documents the services can read: checked with their own readers,
so a change of a stored shape shows here before it skews the history bench."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from history_seed import (
    MARKER,
    event_docs,
    execution_doc,
    plan,
    result_doc,
    saga_doc,
)
from integr8scode_api.adapters.mongo_executions import execution_of
from integr8scode_api.domain.executions import ExecutionStatus
from integr8scode_coordinator.adapters.mongo_sagas import _to_saga
from integr8scode_event_replay.domain.messages import (
    UnreplayableEventError,
    envelope_from_document,
)


def _unmarked(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != MARKER}


def _one() -> tuple[str, Any]:
    p = plan(10, 30, users=3, history_user="veteran", history=4, run="r1")
    return p.run, next(p.executions_iter())


def test_an_execution_reads_back_as_the_api_stores_it() -> None:
    run, e = _one()
    doc = execution_doc(e, run)
    assert doc[MARKER] == "r1"
    stored = execution_of(doc)
    assert stored.status is ExecutionStatus.COMPLETED
    assert stored.user_id == "veteran"
    assert [c.status for c in stored.status_history] == ["queued", "running", "completed"]
    assert stored.resource_usage is not None


def test_a_saga_reads_back_as_the_coordinator_stores_it_and_is_terminal() -> None:
    run, e = _one()
    saga = _to_saga(saga_doc(e, run))
    assert saga.status.terminal
    assert saga.request.execution_id == e.execution_id
    terminal = envelope_from_document(saga_doc(e, run)["terminal_event"])
    assert terminal.event_type == "execution.completed"


def test_events_are_valid_envelopes_but_the_marker_makes_replay_skip_them() -> None:
    run, e = _one()
    docs = event_docs(e, run)
    assert [d["event_type"] for d in docs] == [
        "execution.requested",
        "execution.started",
        "execution.completed",
    ]
    for doc in docs:
        assert envelope_from_document(_unmarked(doc)).execution_id == e.execution_id
        with pytest.raises(UnreplayableEventError):
            envelope_from_document(doc)


def test_a_result_is_keyed_by_the_execution() -> None:
    run, e = _one()
    assert result_doc(e, run)["_id"] == e.execution_id


def test_plan_spreads_users_and_covers_the_events() -> None:
    p = plan(10, 45, users=3, history_user="veteran", history=4, run="r2")
    executions = list(p.executions_iter())
    assert len(executions) == 15  # 45 events = 15 lifecycles; 5 of them only in the event store
    assert [e.user_id for e in executions[:4]] == ["veteran"] * 4
    assert {e.user_id for e in executions[4:]} == {f"benchseed-r2-user-{k}" for k in range(3)}
    assert all(a.created_at < b.created_at < p.now for a, b in pairwise(executions))
    fewer = plan(10, 6, users=1, history_user=None, history=0, run="r3")
    assert len(list(fewer.executions_iter())) == 10
