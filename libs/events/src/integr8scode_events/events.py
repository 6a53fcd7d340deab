"""Every concrete event: envelope + fixed ``event_type`` + typed payload + topic.

Decoding goes through one discriminated union, so a consumer gets the right class from the bytes
and a producer cannot send a payload that does not match its type.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, TypeAdapter

from integr8scode_events.envelope import EventEnvelope
from integr8scode_events.payloads import (
    ExecutionCancelledPayload,
    ExecutionCancelRequestedPayload,
    ExecutionCompletedPayload,
    ExecutionFailedPayload,
    ExecutionRequestedPayload,
    ExecutionStartedPayload,
    ExecutionTimedOutPayload,
    NotificationPayload,
)
from integr8scode_events.topics import (
    EXECUTION_EVENTS,
    EXECUTION_REQUESTS,
    NOTIFICATION_EVENTS,
    TopicSpec,
)


class ExecutionRequested(EventEnvelope):
    topic: ClassVar[TopicSpec] = EXECUTION_REQUESTS
    event_type: Literal["execution.requested"] = "execution.requested"
    payload: ExecutionRequestedPayload


class ExecutionCancelRequested(EventEnvelope):
    topic: ClassVar[TopicSpec] = EXECUTION_REQUESTS
    event_type: Literal["execution.cancel_requested"] = "execution.cancel_requested"
    payload: ExecutionCancelRequestedPayload


class ExecutionStarted(EventEnvelope):
    topic: ClassVar[TopicSpec] = EXECUTION_EVENTS
    event_type: Literal["execution.started"] = "execution.started"
    payload: ExecutionStartedPayload


class ExecutionCompleted(EventEnvelope):
    topic: ClassVar[TopicSpec] = EXECUTION_EVENTS
    event_type: Literal["execution.completed"] = "execution.completed"
    payload: ExecutionCompletedPayload


class ExecutionFailed(EventEnvelope):
    topic: ClassVar[TopicSpec] = EXECUTION_EVENTS
    event_type: Literal["execution.failed"] = "execution.failed"
    payload: ExecutionFailedPayload


class ExecutionTimedOut(EventEnvelope):
    topic: ClassVar[TopicSpec] = EXECUTION_EVENTS
    event_type: Literal["execution.timed_out"] = "execution.timed_out"
    payload: ExecutionTimedOutPayload


class ExecutionCancelled(EventEnvelope):
    topic: ClassVar[TopicSpec] = EXECUTION_EVENTS
    event_type: Literal["execution.cancelled"] = "execution.cancelled"
    payload: ExecutionCancelledPayload


class NotificationSent(EventEnvelope):
    topic: ClassVar[TopicSpec] = NOTIFICATION_EVENTS
    event_type: Literal["notification.sent"] = "notification.sent"
    payload: NotificationPayload


class NotificationFailed(EventEnvelope):
    topic: ClassVar[TopicSpec] = NOTIFICATION_EVENTS
    event_type: Literal["notification.failed"] = "notification.failed"
    payload: NotificationPayload


AnyEvent = Annotated[
    ExecutionRequested
    | ExecutionCancelRequested
    | ExecutionStarted
    | ExecutionCompleted
    | ExecutionFailed
    | ExecutionTimedOut
    | ExecutionCancelled
    | NotificationSent
    | NotificationFailed,
    Field(discriminator="event_type"),
]

EVENT_TYPES: dict[str, type[EventEnvelope]] = {
    cls.model_fields["event_type"].default: cls
    for cls in (
        ExecutionRequested,
        ExecutionCancelRequested,
        ExecutionStarted,
        ExecutionCompleted,
        ExecutionFailed,
        ExecutionTimedOut,
        ExecutionCancelled,
        NotificationSent,
        NotificationFailed,
    )
}
TERMINAL_EXECUTION_EVENTS: frozenset[str] = frozenset(
    {"execution.completed", "execution.failed", "execution.timed_out", "execution.cancelled"}
)

_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def event_adapter() -> TypeAdapter[AnyEvent]:
    """The decoder for every known event (built once at import: pure, no I/O)."""
    return _ADAPTER
