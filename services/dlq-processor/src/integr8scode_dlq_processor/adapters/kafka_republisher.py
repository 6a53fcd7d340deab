"""``Republisher`` on Kafka: the retry goes out through the shared ``EventPublisher``.

Called inside the ``dlq.retry`` span: ``reinject_context`` replaces the message's
``traceparent`` with the PRODUCER span's, a child of ``dlq.retry``, so the retried handling is
part of the original trace.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from integr8scode_dlq_processor.domain.errors import RepublishFailedError
from integr8scode_dlq_processor.domain.ports import Publication
from integr8scode_dlq_processor.domain.retry_message import RetryMessage
from integr8scode_events import PublishError
from integr8scode_events.kafka import EventPublisher


class KafkaRepublisher:
    def __init__(
        self,
        publisher: EventPublisher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._publisher = publisher
        self._clock = clock

    async def republish(self, message: RetryMessage) -> Publication:
        try:
            record = await self._publisher.publish_raw(
                message.topic,
                message.value,
                message.key,
                message.headers,
                reinject_context=True,
            )
        except PublishError as exc:
            raise RepublishFailedError(str(exc)) from exc
        return Publication(
            partition=record.partition, offset=record.offset, published_at=self._clock()
        )
