"""The consumer runner: group membership, typed dispatch, retries, dead letters, commits.

For each message: a CONSUMER span (child of the producer's context from the headers) stays open
for the whole handling; the handler gets bounded in-process retries; a message that still fails,
or can't be decoded, goes to ``dead_letter_queue`` with its original headers plus the ``x-*``
failure headers; then its offset is committed. A handler that keeps failing never blocks its
partition, and nothing is committed before it was handled or dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from integr8scode_events import headers as h
from integr8scode_events import tracing as t
from integr8scode_events.codec import decode_event
from integr8scode_events.errors import DecodeError, PublishError
from integr8scode_events.kafka.batches import BatchDispatch, raw_message
from integr8scode_events.kafka.dead_letters import dead_letter, failure_headers
from integr8scode_events.kafka.handlers import (
    BatchHandler,
    HandlerRegistry,
    MessageContext,
    RawHandler,
)
from integr8scode_events.kafka.partition_workers import PartitionWorkers
from integr8scode_events.kafka.publisher import EventPublisher
from integr8scode_events.kafka.retry_policy import RetryPolicy
from integr8scode_events.kafka.settings import KafkaSettings
from integr8scode_events.topics import DEAD_LETTER_QUEUE
from integr8scode_events.trace_context import StoredTraceContext
from integr8scode_spans import start_current_span

log = logging.getLogger(__name__)


class _Dispatch(NamedTuple):
    # A tuple: made per message, a frozen dataclass costs a setattr call per field.
    handle: Callable[[MessageContext], Awaitable[None]]
    dead_letter_at_once: bool = False


_OK = Status(StatusCode.OK)


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._runner.release_partitions(set(revoked))
        await self._runner.commit_or_leave(set(revoked), "revoked", forget=True)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._runner.assigned.set()


class ConsumerRunner:
    """Runs one consumer group member until ``stop()``.

    Give one of ``handlers`` (decoded, typed events), ``raw_handler`` (bytes and headers, one
    message at a time) or ``batch_handler`` (every message of a fetched batch at once, in one
    CONSUMER span linked to each message's producer context: the event-store archiver).
    A DLQ retry carrying ``x-retry-group`` is skipped by every group but the one it names.
    ``partition_concurrency`` handles each partition in a worker of its own (see
    ``partition_workers``): a slow handler then holds up only its partition.
    ``dead_letter_topic=None`` means a message is never given up: the handler is retried with
    capped backoff until it succeeds or the runner stops (the DLQ processor itself).
    ``fetch_min_bytes``/``fetch_max_wait_ms`` are the broker's fetch hold (aiokafka's defaults:
    answer at the first byte, else after 500 ms); a consumer that would rather take fewer,
    bigger batches than react at once (the archiver) raises the first.
    """

    def __init__(
        self,
        *,
        settings: KafkaSettings,
        group_id: str,
        topics: Sequence[str],
        publisher: EventPublisher,
        handlers: HandlerRegistry | None = None,
        raw_handler: RawHandler | None = None,
        batch_handler: BatchHandler | None = None,
        retry: RetryPolicy | None = None,
        dead_letter_topic: str | None = DEAD_LETTER_QUEUE.name,
        span_name: str = t.CONSUME_SPAN,
        link_header: str | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        max_batch: int = 100,
        poll_timeout_ms: int = 200,
        stop_grace_s: float = 10.0,
        auto_offset_reset: str = "earliest",
        partition_concurrency: bool = False,
        max_queued_per_partition: int = 100,
        fetch_min_bytes: int = 1,
        fetch_max_wait_ms: int = 500,
    ) -> None:
        if partition_concurrency and batch_handler is not None:
            raise ValueError("partition_concurrency applies to handlers and raw_handler")
        if sum(x is not None for x in (handlers, raw_handler, batch_handler)) != 1:
            raise ValueError("give exactly one of handlers, raw_handler or batch_handler")
        self._settings = settings
        self._group_id = group_id
        self._topics = list(topics)
        self._publisher = publisher
        self._handlers = handlers
        self._raw_handler = raw_handler
        self._retry = retry or RetryPolicy()
        self._dead_letter_topic = dead_letter_topic
        self._span_name = span_name
        self._link_header = link_header
        self._client_id = f"{settings.client_id_prefix}-{group_id}"
        self._span_attributes: dict[str, Any] = {
            t.MESSAGING_SYSTEM: "kafka",
            t.MESSAGING_OPERATION_NAME: "process",
            t.MESSAGING_OPERATION_TYPE: "process",
            t.MESSAGING_GROUP: group_id,
            t.MESSAGING_CLIENT_ID: self._client_id,
            **t.broker_attributes(settings.bootstrap_servers),
        }
        self._tracer = t.tracer(tracer_provider)
        self._max_batch = max_batch
        self._poll_timeout_ms = poll_timeout_ms
        self._stop_grace_s = stop_grace_s
        self._auto_offset_reset = auto_offset_reset
        self._fetch_min_bytes = fetch_min_bytes
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._batches = (
            BatchDispatch(
                batch_handler,
                tracer=self._tracer,
                span_name=span_name,
                group_id=group_id,
                retry=self._retry,
                span_attributes=self._span_attributes,
                dead_letter=self._dead_letter if dead_letter_topic is not None else None,
            )
            if batch_handler is not None
            else None
        )
        self._workers: PartitionWorkers | None = (
            PartitionWorkers(self._handle, self._mark_done, max_queued=max_queued_per_partition)
            if partition_concurrency
            else None
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._commit_interval_s = settings.commit_interval_ms / 1000
        self._next_commit_at = 0.0
        self._stopping = asyncio.Event()
        self._in_flight: asyncio.Task[None] | None = None
        self.assigned = asyncio.Event()
        self.handled = 0
        self.dead_lettered = 0

    @property
    def group_id(self) -> str:
        return self._group_id

    def stop(self) -> None:
        """Ask the loop to stop: the in-flight message may finish within the grace period;
        after it, it is cancelled and left uncommitted, so it is delivered again later."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        task = self._in_flight
        if task is not None and not task.done():
            asyncio.get_running_loop().call_later(self._stop_grace_s, task.cancel)

    async def run(self) -> None:
        """Consume until ``stop()``; commits what was handled, then leaves the group."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=self._client_id,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
            request_timeout_ms=max(self._settings.request_timeout_ms, 40_000),
            fetch_min_bytes=self._fetch_min_bytes,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        consumer.subscribe(self._topics, listener=_CommitOnRevoke(self))
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise PublishError(f"consumer group {self._group_id} can't reach Kafka: {exc}") from exc
        self._consumer = consumer
        try:
            if self._workers is not None:
                await self._consume_by_partition(consumer, self._workers)
            while self._workers is None and not self._stopping.is_set():
                batch = await consumer.getmany(
                    timeout_ms=self._poll_timeout_ms, max_records=self._max_batch
                )
                if batch and not await self._handle_batch_in_task(batch):
                    break
                await self._commit_if_due()
        finally:
            try:
                await self.release_partitions(None)
                await self.commit_or_leave(None, "stopping")
            finally:
                # What this member could not commit is delivered again to whoever holds the
                # partition next (this runner's next consumer included), which starts from
                # the committed offsets: none of it may be committed by a later member.
                self._pending.clear()
                self._consumer = None
                await consumer.stop()

    async def _consume_by_partition(
        self, consumer: AIOKafkaConsumer, workers: PartitionWorkers
    ) -> None:
        """Fetch and hand each partition's records to its worker; pause a partition whose
        worker is behind; commit what the workers completed."""
        while not self._stopping.is_set():
            crashed = workers.crashed()
            if crashed is not None:
                raise crashed
            batch = await consumer.getmany(
                timeout_ms=self._poll_timeout_ms, max_records=self._max_batch
            )
            for tp, records in batch.items():
                if tp in consumer.assignment():  # not revoked since it was fetched
                    workers.add(tp, records)
            behind = workers.backlogged()
            paused = consumer.paused()
            if behind - paused:
                consumer.pause(*(behind - paused))
            if paused - behind:
                consumer.resume(*(paused - behind))
            await self._commit_if_due()

    async def release_partitions(self, partitions: set[TopicPartition] | None) -> None:
        """Stop the partition workers of ``partitions`` (all with None); no-op without them."""
        workers = self._workers
        if workers is not None:
            await workers.release(
                workers.partitions if partitions is None else partitions, self._stop_grace_s
            )

    def _mark_done(self, tp: TopicPartition, next_offset: int) -> None:
        self._pending[tp] = next_offset

    async def _commit_if_due(self) -> None:
        """Commit what was handled at most once per ``KAFKA_COMMIT_INTERVAL_MS`` (every batch
        with 0). A commit is a broker round trip, and under load one per message was most of
        Kafka's work; a crash redelivers at most that window, which the idempotent consumers
        absorb. Called after every poll, idle ones too, so the last offsets are committed within
        the interval plus one poll; revocation and stopping commit at once."""
        now = time.monotonic()
        if now < self._next_commit_at:
            return
        self._next_commit_at = now + self._commit_interval_s
        await self.commit_or_leave(None, "periodic")

    async def commit_or_leave(
        self, only: set[TopicPartition] | None, when: str, *, forget: bool = False
    ) -> None:
        """``commit_pending`` that never stops the loop, a rebalance or a shutdown: a commit
        the group refuses (it rebalanced meanwhile: the member is unknown, the generation old)
        or that doesn't end within ``stop_grace_s`` (aiokafka retries a commit without end
        while its consumer closes with the coordinator unknown) leaves those messages to be
        delivered again, which the idempotent consumers absorb. ``forget`` drops what ``only``
        had pending whatever the outcome (revoked partitions: committing them later would
        fail, and every other partition's commit with them)."""
        try:
            async with asyncio.timeout(self._stop_grace_s):
                await self.commit_pending(only)
        except (KafkaError, TimeoutError) as exc:
            log.warning(
                "group %s: offsets not committed (%s: %r); those messages will be delivered again",
                self._group_id,
                when,
                exc,
            )
        finally:
            if forget and only is not None:
                for tp in only:
                    self._pending.pop(tp, None)

    async def commit_pending(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the offsets of handled messages (of ``only`` these partitions)."""
        consumer = self._consumer
        if consumer is None or not self._pending:
            return
        offsets = {tp: offset for tp, offset in self._pending.items() if only is None or tp in only}
        if not offsets:
            return
        await consumer.commit(offsets)
        for tp, offset in offsets.items():
            if self._pending.get(tp) == offset:
                del self._pending[tp]

    async def _handle_batch_in_task(self, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Handle a fetched batch in its own task so ``stop()`` can cancel it; False if the
        in-flight message was abandoned (it stays uncommitted and is delivered again)."""
        self._in_flight = asyncio.create_task(self._handle_batch(batch))
        try:
            await self._in_flight
        except asyncio.CancelledError:
            if self._stopping.is_set() and self._in_flight.cancelled():
                log.warning("abandoned the in-flight message at shutdown; it will be redelivered")
                return False
            raise
        finally:
            self._in_flight = None
        return True

    async def _handle_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        if self._batches is not None:
            records = [record for tp_records in batch.values() for record in tp_records]
            self.handled += await self._batches.handle(records)
            for tp, tp_records in batch.items():
                self._pending[tp] = tp_records[-1].offset + 1
            return
        for tp, records in batch.items():
            for record in records:
                if self._stopping.is_set():
                    return  # not started: left uncommitted for the next member
                await self._handle(record)
                self._pending[tp] = record.offset + 1

    async def _handle(self, record: Any) -> None:
        headers = h.to_dict(record.headers)
        if h.for_another_group(headers, self._group_id):
            return
        parent = t.extract_context(headers)
        if t.is_noop(self._tracer):
            # No tracing in this process: no span bookkeeping on the hot path, but the
            # message's context is current while it is handled, so what the handler publishes
            # or stores carries it unchanged and the next hop continues the trace.
            with t.continued(parent) as passed_on:
                dispatch = self._dispatch_for(record, headers, passed_on)
                if dispatch is not None:
                    await self._with_retries(record, headers, passed_on, dispatch)
            return
        attributes: dict[str, Any] = {
            **self._span_attributes,
            t.MESSAGING_DESTINATION: record.topic,
            t.MESSAGING_PARTITION: str(record.partition),
            t.MESSAGING_OFFSET: record.offset,
            t.MESSAGING_BODY_SIZE: len(record.value or b""),
        }
        if record.key is not None:
            attributes[t.MESSAGING_KEY] = record.key.decode(errors="replace")
        links: tuple[trace.Link, ...] = ()
        if self._link_header is not None and (
            sender := StoredTraceContext(headers.get(self._link_header) or None).span_context
        ):
            links = (trace.Link(sender, {"integr8scode.link.reason": self._link_header}),)
        with start_current_span(
            self._tracer,
            self._span_name,
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            dispatch = self._dispatch_for(record, headers, span)
            if dispatch is None:
                return
            await self._with_retries(record, headers, span, dispatch)

    def _dispatch_for(
        self, record: Any, headers: dict[str, str], span: trace.Span
    ) -> _Dispatch | None:
        if self._raw_handler is not None:
            raw_handler = self._raw_handler
            if span.is_recording():  # not decoded here: named from its envelope
                span.set_attributes(t.message_attributes(record.value, headers))
            message = raw_message(record, headers)
            return _Dispatch(lambda ctx: raw_handler(message, ctx))
        assert self._handlers is not None  # noqa: S101 - constructor guarantees one of the two
        try:
            event = decode_event(record.value)
        except DecodeError as exc:
            error = exc
            if span.is_recording():  # whatever it does say of itself
                span.set_attributes(t.message_attributes(record.value, headers))

            async def undecodable(_: MessageContext) -> None:
                raise error

            # No retry can help a message that can't be decoded: dead-letter it at once.
            return _Dispatch(undecodable, dead_letter_at_once=True)
        if span.is_recording():
            event_id = str(event.event_id)
            named = {t.EVENT_ID: event_id, t.MESSAGING_MESSAGE_ID: event_id}
            named[t.EVENT_TYPE] = event.event_type
            if event.execution_id:
                named[t.EXECUTION_ID] = event.execution_id
            span.set_attributes(named)
        handler = self._handlers.handler_for(event)
        if handler is None:
            span.set_attribute("messaging.handler", "none")
            return None
        return _Dispatch(lambda ctx: handler(event, ctx))

    async def _with_retries(
        self, record: Any, headers: dict[str, str], span: trace.Span, dispatch: _Dispatch
    ) -> None:
        attempt = 0
        while True:
            attempt += 1
            ctx = MessageContext(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                headers=headers,
                group_id=self._group_id,
                attempt=attempt,
                span=span,
            )
            try:
                await dispatch.handle(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - routed to retry or the dead-letter topic
                span.record_exception(exc, attributes={"messaging.handler.attempt": attempt})
                give_up = dispatch.dead_letter_at_once or isinstance(exc, self._retry.non_retryable)
                if self._dead_letter_topic is not None and (
                    give_up or attempt >= self._retry.max_attempts
                ):
                    span.set_attribute(t.HANDLER_ATTEMPTS, attempt)
                    await self._dead_letter(record, headers, span, exc)
                    return
                delay = self._retry.backoff(attempt)
                span.add_event("retry", {"attempt": attempt, "delay_s": delay})
                log.warning(
                    "handler failed on %s[%d]@%d (attempt %d): %r; retrying in %.2fs",
                    record.topic,
                    record.partition,
                    record.offset,
                    attempt,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if span.is_recording():
                span.set_attribute(t.HANDLER_ATTEMPTS, attempt)
                span.set_status(_OK)
            self.handled += 1
            return

    async def _dead_letter(
        self, record: Any, headers: dict[str, str], span: trace.Span, exc: BaseException
    ) -> None:
        assert self._dead_letter_topic is not None  # noqa: S101 - checked by the caller
        await dead_letter(
            self._publisher,
            self._dead_letter_topic,
            record,
            failure_headers(record, headers, self._group_id, exc),
            self._retry.backoff,
        )
        span.set_attribute(t.DEAD_LETTERED, True)
        span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {type(exc).__name__}: {exc}"))
        self.dead_lettered += 1
        log.error(
            "dead-lettered %s[%d]@%d after failure: %r",
            record.topic,
            record.partition,
            record.offset,
            exc,
            exc_info=exc,
        )
