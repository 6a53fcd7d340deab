"""What the notifier needs from the outside world, as Protocols the adapters implement (and
the unit tests fake). Store methods raise ``StoreUnavailableError`` when Mongo is down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from integr8scode_events import EventEnvelope, PublishedRecord
from integr8scode_notifier.domain.notifications import (
    Channel,
    Delivery,
    Target,
    UserChannels,
)
from integr8scode_notifier.domain.retry import AttemptResult
from integr8scode_notifier.domain.summary import ExecutionFacts, ExecutionSummary


class DeliveryStore(Protocol):
    """Delivery records (collection ``notifications``, written only by the notifier)."""

    async def ensure_indexes(self) -> None: ...

    async def open(self, delivery: Delivery) -> Delivery:
        """Insert ``delivery`` (status pending) unless a record with its id exists; returns the
        stored record either way (unique insert on ``_id``: the decision is made once)."""
        ...

    async def record_attempt(
        self, delivery_id: str, attempts: int, status_code: int | None, error: str | None
    ) -> None:
        """A failed attempt that will be retried: the counters move on, the status stays."""
        ...

    async def finish(self, delivery: Delivery) -> None:
        """Store the outcome fields of ``delivery`` (status, attempts, final, ...)."""
        ...

    async def mark_announced(self, delivery_id: str) -> None: ...


class SettingsSource(Protocol):
    """Users' channels (collection ``notification_settings``, written by the API; read-only)."""

    async def channels_for(self, user_id: str) -> UserChannels: ...


class ExecutionSource(Protocol):
    """The API's ``executions`` records, read by ``_id`` only."""

    async def facts(self, execution_id: str) -> ExecutionFacts | None: ...


@dataclass(frozen=True)
class OutboundMessage:
    """One attempt's input: what to send, to whom, under which notification id."""

    notification_id: str
    event_id: str
    event_type: str
    target: Target
    summary: ExecutionSummary
    attempt: int


class ChannelSender(Protocol):
    """Sends one attempt over one channel. Never raises for the receiver's behaviour: network
    errors, timeouts, HTTP statuses and refused targets come back classified."""

    channel: Channel

    async def send(self, message: OutboundMessage) -> AttemptResult: ...


class Publisher(Protocol):
    async def publish(self, event: EventEnvelope) -> PublishedRecord: ...
