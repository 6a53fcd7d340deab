"""``ReplayPublisher`` on the shared ``EventPublisher``: each replayed message gets a PRODUCER
span in the current (replay) trace with a link to the original event's producer span."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.trace import Link

from integr8scode_event_replay.domain.errors import PublishFailedError
from integr8scode_event_replay.domain.messages import ReplayMessage
from integr8scode_events import PublishError
from integr8scode_events.kafka import EventPublisher

ORIGINAL_EVENT_ID = "replay.original_event_id"


def original_links(message: ReplayMessage) -> list[Link]:
    """A link to the span that published the original event, when the store kept its context."""
    original = message.original_trace.span_context
    if original is None:
        return []
    return [Link(original, {ORIGINAL_EVENT_ID: str(message.event.event_id)})]


class KafkaReplayPublisher:
    """Publishes through ``EventPublisher.publish``: the envelope re-serialised, keyed by its
    execution id, with the standard headers, a fresh ``traceparent`` and the replay headers;
    the PRODUCER span carries ``event.id`` / ``event.type`` like any other publish."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def publish(
        self, message: ReplayMessage, handed_over: Callable[[], object] | None = None
    ) -> None:
        try:
            await self._publisher.publish(
                message.event,
                topic=message.topic,
                extra_headers=message.headers,
                links=original_links(message),
                handed_over=handed_over,
            )
        except PublishError as exc:
            raise PublishFailedError(str(exc)) from exc
