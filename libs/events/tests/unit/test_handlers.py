"""HandlerRegistry: typed dispatch by event type."""

from __future__ import annotations

import pytest

from integr8scode_events.envelope import EventEnvelope
from integr8scode_events.events import ExecutionCompleted, ExecutionRequested
from integr8scode_events.kafka.handlers import HandlerRegistry, MessageContext


async def on_requested(event: ExecutionRequested, ctx: MessageContext) -> None:
    del event, ctx


async def on_completed(event: ExecutionCompleted, ctx: MessageContext) -> None:
    del event, ctx


def test_registered_handler_is_found_by_event_type(all_events: list[EventEnvelope]) -> None:
    registry = (
        HandlerRegistry().on(ExecutionRequested, on_requested).on(ExecutionCompleted, on_completed)
    )
    found = {e.event_type: registry.handler_for(e) for e in all_events}
    assert found["execution.requested"] is on_requested
    assert found["execution.completed"] is on_completed
    assert registry.event_types == frozenset({"execution.requested", "execution.completed"})


def test_unknown_event_types_return_none(all_events: list[EventEnvelope]) -> None:
    registry = HandlerRegistry().on(ExecutionRequested, on_requested)
    others = [e for e in all_events if not isinstance(e, ExecutionRequested)]
    assert others
    assert all(registry.handler_for(e) is None for e in others)


def test_duplicate_registration_raises() -> None:
    registry = HandlerRegistry().on(ExecutionRequested, on_requested)
    with pytest.raises(ValueError, match=r"execution\.requested"):
        registry.on(ExecutionRequested, on_requested)


def test_registries_do_not_share_handlers() -> None:
    HandlerRegistry().on(ExecutionRequested, on_requested)
    assert HandlerRegistry().event_types == frozenset()
