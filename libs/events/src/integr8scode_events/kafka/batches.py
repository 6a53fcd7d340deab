"""The consumer runner's batch mode: every message of a fetched batch handed over at once.

Used by the event-store archiver, whose writes are cheaper per batch. The batch is handled in
one CONSUMER span of its own (a batch mixes traces), linked to each message's producer span;
each message that carries a trace also gets a ``kafka.consume`` span in that trace, linked to
the batch span and as long as the batch, so every consumer of an execution's events is in the
execution's trace (the batch's own work, its Mongo write, is in the batch's). A batch of one
traced message is simply handled in that message's trace. A failing batch
is retried per the runner's ``RetryPolicy`` and, when it still fails, every message of it is
dead-lettered (or retried without end when the runner has no dead-letter topic).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode

from integr8scode_events import headers as h
from integr8scode_events import tracing as t
from integr8scode_events.kafka.handlers import BatchHandler, RawMessage
from integr8scode_events.kafka.retry_policy import RetryPolicy
from integr8scode_events.trace_context import StoredTraceContext
from integr8scode_spans import start_current_span, start_span

log = logging.getLogger(__name__)

# Links a batch span carries at most (one per message of the batch).
MAX_BATCH_LINKS = 128

DeadLetter = Callable[[Any, dict[str, str], trace.Span, BaseException], Awaitable[None]]


def raw_message(record: Any, headers: dict[str, str]) -> RawMessage:
    """A consumer record as the handlers see it."""
    return RawMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=headers,
        timestamp_ms=record.timestamp,
    )


class BatchDispatch:
    """Hands whole batches to ``handler`` with the runner's retries and dead-lettering."""

    def __init__(
        self,
        handler: BatchHandler,
        *,
        tracer: trace.Tracer,
        span_name: str,
        group_id: str,
        retry: RetryPolicy,
        span_attributes: dict[str, Any] | None = None,
        dead_letter: DeadLetter | None,
    ) -> None:
        self._handler = handler
        self._tracer = tracer
        self._span_name = span_name
        self._group_id = group_id
        # What every batch and per-message span says of this consumer, built once.
        self._span_attributes: dict[str, Any] = {
            t.MESSAGING_SYSTEM: "kafka",
            t.MESSAGING_OPERATION_NAME: "process",
            t.MESSAGING_OPERATION_TYPE: "process",
            t.MESSAGING_GROUP: group_id,
            **(span_attributes or {}),
        }
        self._retry = retry
        self._dead_letter = dead_letter

    async def handle(self, fetched: Sequence[Any]) -> int:
        """Handle the fetched records as one batch, leaving out DLQ retries addressed to
        another group; returns how many were handled (not dead-lettered)."""
        records: list[Any] = []
        messages: list[RawMessage] = []
        for record in fetched:
            headers = h.to_dict(record.headers)
            if not h.for_another_group(headers, self._group_id):
                records.append(record)
                messages.append(raw_message(record, headers))
        if not records:
            return 0
        # A batch of one traced message is handled in that message's trace; a bigger batch
        # mixes traces, so it is a root of its own with a kafka.consume span in each.
        alone = len(messages) == 1 and h.TRACEPARENT in messages[0].headers
        # Each message's trace context, parsed once for the batch span's link and its own span.
        stored = (
            []
            if t.is_noop(self._tracer)
            else [StoredTraceContext.from_headers(m.headers) for m in messages]
        )
        with self._span(messages, stored, alone) as span:
            per_message = [] if alone else self._message_spans(messages, stored, span)
            handled = 0
            try:
                handled = await self._with_retries(records, messages, span)
            finally:
                for message_span in per_message:
                    if not handled:
                        message_span.set_status(Status(StatusCode.ERROR, "batch not stored"))
                    message_span.end()
            return handled

    def _message_spans(
        self,
        messages: Sequence[RawMessage],
        stored: Sequence[StoredTraceContext],
        batch: trace.Span,
    ) -> list[trace.Span]:
        """A CONSUMER span per message, in the message's own trace (none for a message without
        one: it would be a root of its own), linked to the batch span."""
        if not batch.is_recording():
            return []
        link = [trace.Link(batch.get_span_context())]
        spans: list[trace.Span] = []
        for message, context in zip(messages, stored, strict=True):
            if h.TRACEPARENT not in message.headers:
                continue
            attributes = {
                **self._span_attributes,
                t.MESSAGING_DESTINATION: message.topic,
                t.MESSAGING_PARTITION: str(message.partition),
                t.MESSAGING_OFFSET: message.offset,
                t.MESSAGING_BATCH_COUNT: len(messages),
                t.MESSAGING_BODY_SIZE: len(message.value or b""),
            }
            if event_type := message.headers.get(h.EVENT_TYPE):
                attributes[t.EVENT_TYPE] = event_type
            spans.append(
                start_span(
                    self._tracer,
                    t.CONSUME_SPAN,
                    context=context.context(),
                    kind=SpanKind.CONSUMER,
                    attributes=attributes,
                    links=link,
                )
            )
        return spans

    def _span(
        self, messages: Sequence[RawMessage], stored: Sequence[StoredTraceContext], alone: bool
    ) -> AbstractContextManager[trace.Span]:
        if t.is_noop(self._tracer):
            return nullcontext(INVALID_SPAN)
        if alone:
            context, links = t.extract_context(messages[0].headers), []
        else:
            context = Context()  # a batch mixes traces: its own root, linked to each
            links = [
                trace.Link(ctx)
                for context in stored[:MAX_BATCH_LINKS]
                if (ctx := context.span_context)
            ]
        return start_current_span(
            self._tracer,
            self._span_name,
            context=context,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=self._batch_attributes(messages),
            record_exception=False,
            set_status_on_exception=False,
        )

    def _batch_attributes(self, messages: Sequence[RawMessage]) -> dict[str, Any]:
        attributes = {**self._span_attributes, t.MESSAGING_BATCH_COUNT: len(messages)}
        topics = {m.topic for m in messages}
        if len(topics) == 1:  # a batch from several topics has no one destination
            attributes[t.MESSAGING_DESTINATION] = topics.pop()
        if len(messages) == 1:
            [message] = messages
            attributes[t.MESSAGING_PARTITION] = str(message.partition)
            attributes[t.MESSAGING_OFFSET] = message.offset
            if event_type := message.headers.get(h.EVENT_TYPE):
                attributes[t.EVENT_TYPE] = event_type
        return attributes

    async def _with_retries(
        self, records: Sequence[Any], messages: Sequence[RawMessage], span: trace.Span
    ) -> int:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._handler(messages)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried, then every message dead-lettered
                span.record_exception(exc, attributes={"messaging.handler.attempt": attempt})
                if self._dead_letter is not None and (
                    attempt >= self._retry.max_attempts
                    or isinstance(exc, self._retry.non_retryable)
                ):
                    span.set_attribute(t.HANDLER_ATTEMPTS, attempt)
                    for record, message in zip(records, messages, strict=True):
                        await self._dead_letter(record, dict(message.headers), span, exc)
                    return 0
                delay = self._retry.backoff(attempt)
                log.warning(
                    "batch handler failed on %d messages (attempt %d): %r; retrying in %.2fs",
                    len(messages),
                    attempt,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            span.set_attribute(t.HANDLER_ATTEMPTS, attempt)
            span.set_status(Status(StatusCode.OK))
            return len(messages)
