"""The ``dead_letter_queue`` consumer's handler: every message becomes (part of) a record.

It runs inside the runner's ``dlq.consume`` CONSUMER span, whose parent is the context the
dead letter carries — the original message's publish — so the failure and its storage show in
the request's trace. The runner never gives a dead letter up (``dead_letter_topic=None``): if
Mongo is down the handler raises and is retried with backoff until it is back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import metrics

from integr8scode_dlq_processor.domain.dead_letters import DeadLetterService, Intake
from integr8scode_dlq_processor.domain.reports import FailureReport
from integr8scode_events import tracing as t
from integr8scode_events.kafka import MessageContext, RawMessage

DLQ_ID = "dlq.id"
DLQ_STATUS = "dlq.status"
DLQ_RETRY_COUNT = "dlq.retry_count"
DLQ_INTAKE = "dlq.intake"
DLQ_ORIGINAL_TOPIC = "dlq.original.topic"
DLQ_ORIGINAL_GROUP = "dlq.original.consumer_group"
DLQ_ERROR_TYPE = "dlq.error.type"


class DeadLetterHandler:
    """``raw_handler`` for the ``ConsumerRunner``; ``on_scheduled`` wakes the scheduler."""

    def __init__(
        self,
        service: DeadLetterService,
        on_scheduled: Callable[[], None] | None = None,
        *,
        meter: metrics.Meter | None = None,
    ) -> None:
        self._service = service
        self._on_scheduled = on_scheduled
        self._received = (meter or metrics.get_meter(__name__)).create_counter(
            "dlq.dead_letters",
            unit="{message}",
            description="Dead letters received, by original topic, group, intake and status.",
        )

    async def __call__(self, message: RawMessage, ctx: MessageContext) -> None:
        report = FailureReport.from_message(
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            headers=message.headers,
            timestamp_ms=message.timestamp_ms,
        )
        span = ctx.span
        if span.is_recording():
            span.set_attributes(_attributes(report))
        received = await self._service.receive(report)
        record = received.record
        if span.is_recording():
            span.set_attributes(
                {
                    DLQ_ID: record.id,
                    DLQ_STATUS: record.status.value,
                    DLQ_RETRY_COUNT: report.retry_count,
                    DLQ_INTAKE: received.intake.value,
                }
            )
        self._received.add(
            1,
            {
                "messaging.destination.name": record.topic or "",
                "messaging.consumer.group.name": record.consumer_group or "",
                DLQ_INTAKE: received.intake.value,
                DLQ_STATUS: record.status.value,
            },
        )
        if received.intake is not Intake.DUPLICATE and self._on_scheduled is not None:
            self._on_scheduled()


def _attributes(report: FailureReport) -> dict[str, Any]:
    found = {
        DLQ_ORIGINAL_TOPIC: report.original_topic,
        DLQ_ORIGINAL_GROUP: report.consumer_group,
        DLQ_ERROR_TYPE: report.error.type,
        t.EVENT_ID: report.event_id,
        t.EVENT_TYPE: report.event_type,
        t.EXECUTION_ID: report.execution_id,
    }
    return {k: v for k, v in found.items() if v is not None}
