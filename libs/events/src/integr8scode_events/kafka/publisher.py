"""Publishing events: idempotent producer, ``acks=all``, a PRODUCER span that covers the ack."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from integr8scode_events import headers as h
from integr8scode_events import tracing as t
from integr8scode_events.envelope import EventEnvelope
from integr8scode_events.errors import PublishError, PublishUncertainError
from integr8scode_events.kafka.settings import KafkaSettings
from integr8scode_events.topics import PublishedRecord
from integr8scode_spans import start_current_span

log = logging.getLogger(__name__)

# After an acknowledgement the broker counts as reachable this long: the reachability check
# (one coroutine per broker) is skipped on the hot path.
_REACHABLE_FOR_S = 1.0
# Topics whose span attributes are kept built (a handful in practice; bounded all the same).
_MAX_CACHED_TOPICS = 256


class EventPublisher:
    """One Kafka producer per process, shared by everything that publishes.

    ``publish`` sends an envelope with the standard headers and the current trace context;
    ``publish_raw`` forwards bytes and headers as they are (dead letters, retries, replays).
    Both return only after the broker acknowledged, and raise ``PublishError`` otherwise.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        service: str,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        linger_ms: int = 0,
        publish_timeout_s: float | None = None,
    ) -> None:
        self._settings = settings
        self._service = service
        self._client_id = f"{settings.client_id_prefix}-{service}"
        self._broker = t.broker_attributes(settings.bootstrap_servers)
        self._topic_attributes: dict[str, dict[str, Any]] = {}
        self._tracer = t.tracer(tracer_provider)
        self._linger_ms = linger_ms
        self._publish_timeout_s = publish_timeout_s or settings.request_timeout_ms / 1000
        self._acked_recently_until = 0.0
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect now; raises ``PublishError`` when the broker can't be reached."""
        async with self._lock:
            if self._producer is not None:
                return
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.bootstrap_servers,
                client_id=self._client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=self._linger_ms,
                request_timeout_ms=self._settings.request_timeout_ms,
            )
            try:
                await producer.start()
            except KafkaError as exc:
                await producer.stop()
                raise PublishError(f"Kafka is unreachable: {exc}") from exc
            self._producer = producer

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> EventPublisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def publish(
        self,
        event: EventEnvelope,
        *,
        topic: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        links: Sequence[trace.Link] = (),
        handed_over: Callable[[], object] | None = None,
    ) -> PublishedRecord:
        """Send one event to its topic (or ``topic``) and wait for the broker's acknowledgement.
        ``links`` are added to the PRODUCER span (a replay points back at the original).
        ``handed_over`` is called once the producer holds the message, before its
        acknowledgement: a caller that publishes the next one only then (while this one is
        still being acknowledged) keeps its order on each partition."""
        destination = topic or event.topic.name
        key = event.key
        value = event.to_bytes()
        traced = not t.is_noop(self._tracer)
        attributes: dict[str, Any] = {}
        if traced:
            event_id = str(event.event_id)
            attributes = {
                t.EVENT_ID: event_id,
                t.EVENT_TYPE: event.event_type,
                t.MESSAGING_MESSAGE_ID: event_id,
            }
            if event.execution_id:
                attributes[t.EXECUTION_ID] = event.execution_id
        with self._producer_span(
            destination, key, value, attributes, traced=traced, links=links
        ) as span:
            carrier = {
                h.EVENT_TYPE: event.event_type,
                h.CORRELATION_ID: event.correlation_id,
                h.SERVICE: self._service,
                **(extra_headers or {}),
            }
            # The PRODUCER span is current here, so the consumer becomes its child.
            t.inject_context(carrier)
            return await self._send(span, destination, value, key, carrier, handed_over=handed_over)

    async def publish_raw(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Mapping[str, str],
        *,
        reinject_context: bool = False,
        links: Sequence[trace.Link] = (),
        producer_context_header: str | None = None,
    ) -> PublishedRecord:
        """Forward a message (a dead letter, a retry, a replay) with this service as its
        sender (the ``service`` header; the event's own ``producer`` stays in its body).

        - ``reinject_context``: the PRODUCER span's context replaces the message's
          ``traceparent`` (retries join the current trace, replays start their own); without
          it the headers' context is kept (a dead letter stays in the trace that failed).
        - ``producer_context_header``: the PRODUCER span's ``traceparent`` is also written under
          this header, so the consumer can link to the span that sent it (a dead letter's
          ``dlq.consume`` links to the ``publish dead_letter_queue`` that routed it there).
        - ``links`` are added to the PRODUCER span.
        """
        traced = not t.is_noop(self._tracer)
        attributes = t.message_attributes(value, headers) if traced else {}
        with self._producer_span(topic, key, value, attributes, traced=traced, links=links) as span:
            carrier = {**headers, h.SERVICE: self._service}
            if reinject_context:
                carrier.pop(h.TRACEPARENT, None)
                carrier.pop(h.TRACESTATE, None)
                t.inject_context(carrier)
            if producer_context_header is not None and span.get_span_context().is_valid:
                own: dict[str, str] = {}
                t.inject_context(own, trace.set_span_in_context(span))
                if h.TRACEPARENT in own:
                    carrier[producer_context_header] = own[h.TRACEPARENT]
            return await self._send(span, topic, value, key, carrier)

    @staticmethod
    async def _ensure_reachable(producer: AIOKafkaProducer) -> None:
        """Fail fast, before the message is handed to the producer, when no broker answers: a
        message the idempotent producer accepted is retried until delivered, so a request that
        is refused now must not be queued there."""
        client = producer.client
        for broker in client.cluster.brokers():
            if await client.ready(broker.nodeId):
                return
        raise KafkaConnectionError("no Kafka broker is reachable")

    def _producer_span(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        attributes: dict[str, Any],
        *,
        traced: bool,
        links: Sequence[trace.Link] = (),
    ) -> AbstractContextManager[trace.Span]:
        if not traced:
            return nullcontext(trace.INVALID_SPAN)
        base = self._topic_attributes.get(topic)
        if base is None:
            if len(self._topic_attributes) >= _MAX_CACHED_TOPICS:
                self._topic_attributes.clear()
            # What every publish to ``topic`` says of itself, built once per topic.
            base = self._topic_attributes[topic] = {
                t.MESSAGING_SYSTEM: "kafka",
                t.MESSAGING_OPERATION_NAME: "publish",
                t.MESSAGING_OPERATION_TYPE: "send",
                t.MESSAGING_DESTINATION: topic,
                t.MESSAGING_CLIENT_ID: self._client_id,
                **self._broker,
            }
        attributes = {**base, **attributes, t.MESSAGING_BODY_SIZE: len(value or b"")}
        if key is not None:
            attributes[t.MESSAGING_KEY] = key.decode(errors="replace")
        # Exceptions not recorded as events: _send records the broker's error itself.
        return start_current_span(
            self._tracer,
            f"publish {topic}",
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            links=links,
            record_exception=False,
        )

    async def _send(
        self,
        span: trace.Span,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        carrier: Mapping[str, str],
        *,
        handed_over: Callable[[], object] | None = None,
    ) -> PublishedRecord:
        if self._producer is None:
            await self.start()
        assert self._producer is not None  # noqa: S101 - start() sets it or raises
        producer = self._producer
        try:
            if time.monotonic() > self._acked_recently_until:
                await self._ensure_reachable(producer)
        except KafkaError as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"broker refused the message: {exc}"))
            raise PublishError(f"Kafka refused the message to {topic}: {exc}") from exc
        # One deadline for the hand-over and the acknowledgement (one timer per message).
        delivery: asyncio.Future[Any] | None = None
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                # Handing the message over (metadata, buffer space): until this returns, it is
                # not sent, whatever happens.
                delivery = await producer.send(
                    topic, value=value, key=key, headers=h.to_kafka(carrier)
                )
                if handed_over is not None:
                    handed_over()
                # Shielded: the idempotent producer keeps the batch whatever we do, and its
                # future must stay intact for whoever wants to know how the delivery ended.
                metadata = await asyncio.shield(delivery)
            self._acked_recently_until = time.monotonic() + _REACHABLE_FOR_S
        except TimeoutError as exc:
            span.record_exception(exc)
            if delivery is None:
                span.set_status(Status(StatusCode.ERROR, "not handed to the producer in time"))
                raise PublishError(f"Kafka did not take the message to {topic} in time") from exc
            span.set_status(Status(StatusCode.ERROR, "no acknowledgement in time"))
            raise PublishUncertainError(
                f"Kafka did not acknowledge the message to {topic} within "
                f"{self._publish_timeout_s:g}s; it may still be delivered"
            ) from exc
        except KafkaError as exc:
            span.record_exception(exc)
            if delivery is None:
                span.set_status(Status(StatusCode.ERROR, f"broker refused the message: {exc}"))
                raise PublishError(f"Kafka refused the message to {topic}: {exc}") from exc
            # After the hand-over even a failed delivery may have been written (a lost answer).
            span.set_status(Status(StatusCode.ERROR, f"broker did not acknowledge: {exc}"))
            raise PublishUncertainError(
                f"Kafka did not acknowledge the message to {topic}: {exc}"
            ) from exc
        if span.is_recording():
            span.set_attributes(
                {
                    t.MESSAGING_PARTITION: str(metadata.partition),
                    t.MESSAGING_OFFSET: metadata.offset,
                }
            )
        return PublishedRecord(topic=topic, partition=metadata.partition, offset=metadata.offset)
