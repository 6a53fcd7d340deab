"""Typed dispatch: which coroutine handles which event class."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry.trace import Span

from integr8scode_events.envelope import EventEnvelope

E = TypeVar("E", bound=EventEnvelope)


@dataclass(frozen=True)
class MessageContext:
    """Where a message came from and how it is being handled."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Mapping[str, str]
    group_id: str
    attempt: int
    span: Span


@dataclass(frozen=True)
class RawMessage:
    """A message as it came from Kafka, for consumers that handle bytes (the DLQ processor,
    the event-store archiver)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    timestamp_ms: int


Handler = Callable[[E, MessageContext], Awaitable[None]]
RawHandler = Callable[[RawMessage, MessageContext], Awaitable[None]]
BatchHandler = Callable[[Sequence[RawMessage]], Awaitable[None]]


@dataclass
class HandlerRegistry:
    """Maps event classes to handlers. Events with no handler are acknowledged and skipped:
    a topic carries several event types and each consumer group cares about some of them."""

    _handlers: dict[str, Handler[Any]] = field(default_factory=dict)

    def on(self, event_class: type[E], handler: Handler[E]) -> HandlerRegistry:
        """Register ``handler`` for ``event_class``; returns the registry for chaining."""
        event_type = event_class.model_fields["event_type"].default
        if event_type in self._handlers:
            raise ValueError(f"a handler for {event_type!r} is already registered")
        self._handlers[event_type] = handler
        return self

    def handler_for(self, event: EventEnvelope) -> Handler[Any] | None:
        return self._handlers.get(event.event_type)

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._handlers)
