"""Kafka edge of the notifier: the four terminal execution events."""

from __future__ import annotations

from integr8scode_events import (
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionTimedOut,
)
from integr8scode_events.kafka import HandlerRegistry, MessageContext, idempotency_key
from integr8scode_notifier.delivery import Dispatcher
from integr8scode_notifier.domain.summary import TerminalEvent


class TerminalEventHandlers:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    def registry(self) -> HandlerRegistry:
        return (
            HandlerRegistry()
            .on(ExecutionCompleted, self.on_terminal)
            .on(ExecutionFailed, self.on_terminal)
            .on(ExecutionTimedOut, self.on_terminal)
            .on(ExecutionCancelled, self.on_terminal)
        )

    async def on_terminal(self, event: TerminalEvent, ctx: MessageContext) -> None:
        # The event id, or a key of its own for a replay that asks for re-processing: the
        # notification ids derive from it, so only such a replay notifies again.
        await self._dispatcher.notify(event, idempotency_key(event, ctx), ctx.span)
