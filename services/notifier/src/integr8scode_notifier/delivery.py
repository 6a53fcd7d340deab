"""Delivering one terminal event to every channel its user configured.

Per channel (concurrently, each in a ``notification.deliver`` span under ``kafka.consume``):

1. open the delivery record — a unique insert on its deterministic id; an existing record that
   is *settled* (delivered, refused, or failed permanently) is not sent again, so a redelivery,
   a dead-letter retry or a replay without re-processing only redoes what is still open;
2. open the channel's stored credentials (only now: they stay sealed until a delivery needs
   them); one that can't be opened (a key id not in the ring, an altered value) fails the
   delivery permanently, recorded and announced with the reason, never the value;
3. attempt up to ``attempts`` times with backoff while the outcome is retryable, recording each
   attempt (``attempts`` accumulates across redeliveries);
4. record the outcome, then announce it (``notification.sent`` / ``notification.failed``).

Afterwards, if any channel still failed with a retryable outcome, ``DeliveryFailedError`` is raised
so the message is dead-lettered (and retried later by the DLQ processor). Permanent failures are
recorded and announced but not raised: a receiver that rejected the request won't accept it on
a retry either.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.metrics import Counter
from opentelemetry.trace import Status, StatusCode

from integr8scode_events import NotificationFailed, NotificationSent, ProducerInfo
from integr8scode_events.payloads import NotificationPayload
from integr8scode_notifier.domain.errors import DeliveryFailedError, SecretUnavailableError
from integr8scode_notifier.domain.notifications import (
    NOTIFICATION_NAMESPACE,
    ChannelSetting,
    Delivery,
    DeliveryStatus,
    Target,
    notification_id,
)
from integr8scode_notifier.domain.ports import (
    ChannelSender,
    DeliveryStore,
    ExecutionSource,
    OutboundMessage,
    Publisher,
    SettingsSource,
)
from integr8scode_notifier.domain.retry import AttemptResult, Backoff, Outcome
from integr8scode_notifier.domain.summary import (
    STATUS_BY_EVENT,
    ExecutionSummary,
    TerminalEvent,
    summarize,
)
from integr8scode_telemetry import attributes, start_span

log = logging.getLogger(__name__)

DELIVER_SPAN = "notification.deliver"
CHANNELS_ATTRIBUTE = "notification.channels"
STATUS_ATTRIBUTE = "notification.status"
ATTEMPTS_ATTRIBUTE = "notification.attempts"
SKIPPED_ATTRIBUTE = "notification.skipped"
TARGET_ATTRIBUTE = "notification.target"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeliveryPolicy:
    attempts: int = 3
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True)
class ChannelResult:
    delivery: Delivery
    # Failed for now, worth retrying later: the handler raises DeliveryFailedError.
    retry_later: bool


class Dispatcher:
    """Fans a terminal event out to the user's channels; see the module docstring."""

    def __init__(
        self,
        *,
        settings: SettingsSource,
        executions: ExecutionSource,
        store: DeliveryStore,
        senders: Sequence[ChannelSender],
        publisher: Publisher,
        producer: ProducerInfo,
        public_base_url: str,
        policy: DeliveryPolicy,
        tracer: trace.Tracer | None = None,
        deliveries_counter: Counter | None = None,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._executions = executions
        self._store = store
        self._senders = {sender.channel: sender for sender in senders}
        self._publisher = publisher
        self._producer = producer
        self._public_base_url = public_base_url
        self._policy = policy
        self._tracer = tracer or trace.get_tracer(__name__)
        self._counter = deliveries_counter
        self._clock = clock
        self._sleep = sleep

    async def notify(self, event: TerminalEvent, idempotency_key: str, span: trace.Span) -> None:
        """Deliver ``event`` to every channel of its user; raises ``DeliveryFailedError`` when a
        channel still failed with a retryable outcome (after recording and announcing it)."""
        if event.user_id is None or event.execution_id is None:
            log.warning("%s %s has no user or execution id", event.event_type, event.event_id)
            span.set_attribute(CHANNELS_ATTRIBUTE, 0)
            return
        channels = await self._settings.channels_for(event.user_id)
        targets = [t for t in channels.targets() if t.channel in self._senders]
        span.set_attribute(CHANNELS_ATTRIBUTE, len(targets))
        if not targets:
            return
        facts = await self._executions.facts(event.execution_id)
        summary = summarize(event, facts, self._public_base_url)
        results = await asyncio.gather(
            *(self._deliver(event, idempotency_key, summary, target) for target in targets),
            return_exceptions=True,
        )
        failures: list[ChannelResult] = []
        for result in results:
            if isinstance(result, BaseException):
                # Mongo or Kafka unavailable: the runner retries the whole message; channels
                # delivered meanwhile are skipped then.
                raise result
            if result.retry_later:
                failures.append(result)
        if failures:
            raise DeliveryFailedError(
                "; ".join(
                    f"{f.delivery.channel.value} delivery {f.delivery.id} failed after "
                    f"{f.delivery.attempts} attempts: {f.delivery.error}"
                    for f in failures
                )
            )

    async def _deliver(
        self, event: TerminalEvent, key: str, summary: ExecutionSummary, setting: ChannelSetting
    ) -> ChannelResult:
        delivery_id = notification_id(key, setting.channel)
        with start_span(
            DELIVER_SPAN,
            {
                attributes.NOTIFICATION_ID: delivery_id,
                attributes.NOTIFICATION_CHANNEL: setting.channel.value,
                attributes.EXECUTION_ID: event.execution_id,
                attributes.EVENT_ID: str(event.event_id),
                TARGET_ATTRIBUTE: setting.redacted,
            },
            tracer=self._tracer,
        ) as span:
            now = self._clock()
            trace_id = span.get_span_context().trace_id
            opened = await self._store.open(
                Delivery(
                    id=delivery_id,
                    user_id=event.user_id or "",
                    execution_id=event.execution_id or "",
                    event_id=str(event.event_id),
                    event_type=event.event_type,
                    idempotency_key=key,
                    channel=setting.channel,
                    target=setting.redacted,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                    trace_id=format(trace_id, "032x") if trace_id else None,
                )
            )
            if opened.settled:
                span.set_attribute(SKIPPED_ATTRIBUTE, True)
                span.set_attribute(STATUS_ATTRIBUTE, opened.status.value)
                if not opened.announced:
                    await self._announce(opened, event)
                return ChannelResult(opened, retry_later=False)
            try:
                revealed = setting.reveal()
            except SecretUnavailableError as exc:
                finished, retry_later = self._unopenable(opened, exc), False
            else:
                finished, retry_later = await self._attempts(opened, event, summary, revealed, span)
            await self._store.finish(finished)
            if self._counter is not None:
                self._counter.add(
                    1,
                    {
                        attributes.NOTIFICATION_CHANNEL: setting.channel.value,
                        STATUS_ATTRIBUTE: finished.status.value,
                    },
                )
            await self._announce(finished, event)
            span.set_attribute(STATUS_ATTRIBUTE, finished.status.value)
            span.set_attribute(ATTEMPTS_ATTRIBUTE, finished.attempts)
            if finished.status is not DeliveryStatus.DELIVERED:
                span.set_status(Status(StatusCode.ERROR, finished.error or finished.status.value))
            return ChannelResult(finished, retry_later=retry_later)

    async def _attempts(
        self,
        delivery: Delivery,
        event: TerminalEvent,
        summary: ExecutionSummary,
        target: Target,
        span: trace.Span,
    ) -> tuple[Delivery, bool]:
        sender = self._senders[target.channel]
        attempts = delivery.attempts
        result = AttemptResult.retryable("not attempted")
        for attempt in range(1, self._policy.attempts + 1):
            attempts += 1
            result = await sender.send(
                OutboundMessage(
                    notification_id=delivery.id,
                    event_id=str(event.event_id),
                    event_type=event.event_type,
                    target=target,
                    summary=summary,
                    attempt=attempts,
                )
            )
            span.add_event(
                "notification.attempt",
                {
                    "attempt": attempts,
                    "outcome": result.outcome.value,
                    **({"status_code": result.status_code} if result.status_code else {}),
                    **({"error": result.error} if result.error else {}),
                },
            )
            if result.outcome is not Outcome.RETRYABLE or attempt == self._policy.attempts:
                break
            await self._store.record_attempt(
                delivery.id, attempts, result.status_code, result.error
            )
            await self._sleep(self._policy.backoff.delay(attempt, result.retry_after_s))
        status = {
            Outcome.DELIVERED: DeliveryStatus.DELIVERED,
            Outcome.REFUSED: DeliveryStatus.REFUSED,
        }.get(result.outcome, DeliveryStatus.FAILED)
        retry_later = result.outcome is Outcome.RETRYABLE
        finished = delivery.finished(
            status,
            attempts=attempts,
            at=self._clock(),
            status_code=result.status_code,
            error=result.error,
            final=not retry_later,
        )
        if retry_later:
            log.warning(
                "%s delivery %s failed after %d attempts: %s",
                target.channel.value,
                delivery.id,
                attempts,
                result.error,
            )
        return finished, retry_later

    def _unopenable(self, delivery: Delivery, exc: SecretUnavailableError) -> Delivery:
        # Permanent: the same stored value won't open on a retry. Fixing the key ring (or the
        # user saving the settings again) makes the next event deliver.
        log.error("%s delivery %s not attempted: %s", delivery.channel.value, delivery.id, exc)
        return delivery.finished(
            DeliveryStatus.FAILED,
            attempts=delivery.attempts,
            at=self._clock(),
            status_code=None,
            error=str(exc)[:300],
            final=True,
        )

    async def _announce(self, delivery: Delivery, event: TerminalEvent) -> None:
        """Publish the outcome; the event id is derived from the outcome, so announcing the
        same outcome twice (a crash before ``mark_announced``) gives a duplicate consumers can
        recognise."""
        delivered = delivery.status is DeliveryStatus.DELIVERED
        tag = "sent" if delivered else f"failed:{delivery.attempts}"
        payload = NotificationPayload.model_validate(
            {
                "notification_id": delivery.id,
                "channel": delivery.channel.value,
                "execution_status": STATUS_BY_EVENT[event.event_type],
                # A refused target counts as the one attempt the address check stopped.
                "attempts": max(delivery.attempts, 1),
                "status_code": delivery.last_status_code,
                "error": delivery.error,
            }
        )
        common = {
            "event_id": uuid.uuid5(NOTIFICATION_NAMESPACE, f"{delivery.id}|{tag}"),
            "producer": self._producer,
            "correlation_id": event.correlation_id,
            "execution_id": event.execution_id,
            "user_id": event.user_id,
            "payload": payload,
        }
        announcement = (
            NotificationSent.model_validate(common)
            if delivered
            else NotificationFailed.model_validate(common)
        )
        await self._publisher.publish(announcement)
        await self._store.mark_announced(delivery.id)
