"""Channels, a user's targets, and the delivery record (collection ``notifications``)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

# uuid5 namespace of notification ids; fixed forever, so redeliveries map to the same ids.
NOTIFICATION_NAMESPACE = uuid.UUID("5b0f8a56-3c1e-4d0a-9a8e-2f5f1d3c7e10")


class Channel(enum.StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    REFUSED = "refused"


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    secret: str | None = None

    channel = Channel.WEBHOOK

    @property
    def redacted(self) -> str:
        return redact_webhook_url(self.url)


@dataclass(frozen=True)
class SlackTarget:
    webhook_url: str

    channel = Channel.SLACK

    @property
    def redacted(self) -> str:
        return redact_slack_url(self.webhook_url)


Target = WebhookTarget | SlackTarget


@dataclass(frozen=True)
class ChannelSetting:
    """One configured channel as read: what may be shown (``redacted``), and ``reveal``, which
    opens the stored credentials into a send-ready target only when a delivery needs them
    (``SecretUnavailableError`` when they can't be opened)."""

    channel: Channel
    redacted: str
    reveal: Callable[[], Target] = field(compare=False, repr=False)

    @classmethod
    def of(cls, target: Target) -> ChannelSetting:
        """A setting whose target is already in the clear (tests, legacy documents)."""
        return cls(target.channel, target.redacted, lambda: target)


@dataclass(frozen=True)
class UserChannels:
    """What a user configured (``notification_settings``, written by the API)."""

    webhook: ChannelSetting | None = None
    slack: ChannelSetting | None = None

    def targets(self) -> list[ChannelSetting]:
        return [t for t in (self.webhook, self.slack) if t is not None]


def notification_id(idempotency_key: str, channel: Channel) -> str:
    """Deterministic per (event as processed, channel): a redelivery, a dead-letter retry or a
    replay without re-processing names the same notification; a re-processing replay (whose
    idempotency key differs) names a new one."""
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{idempotency_key}|{channel.value}"))


def redact_webhook_url(url: str) -> str:
    """Scheme, host, port and path: the query (where receivers often put a token) is dropped."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def redact_slack_url(url: str) -> str:
    """A Slack incoming-webhook URL is a credential (its path is the token): keep the host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/***"


@dataclass(frozen=True)
class Delivery:
    """One notification over one channel, and how its delivery went.

    ``final`` says no further attempt will be made for it: delivered, refused, or failed
    permanently (a 4xx). A ``failed`` delivery that is not final ran out of in-process retries
    and is attempted again when the message comes back from the dead-letter queue.
    ``announced`` says the outcome went out as ``notification.sent``/``notification.failed``.
    """

    id: str
    user_id: str
    execution_id: str
    event_id: str
    event_type: str
    idempotency_key: str
    channel: Channel
    target: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    updated_at: datetime
    last_status_code: int | None = None
    error: str | None = None
    delivered_at: datetime | None = None
    trace_id: str | None = None
    final: bool = False
    announced: bool = False

    @property
    def settled(self) -> bool:
        """Nothing more to send: skip the channel on a redelivery."""
        return self.final

    def finished(
        self,
        status: DeliveryStatus,
        *,
        attempts: int,
        at: datetime,
        status_code: int | None,
        error: str | None,
        final: bool,
    ) -> Delivery:
        return replace(
            self,
            status=status,
            attempts=attempts,
            updated_at=at,
            last_status_code=status_code,
            error=error,
            delivered_at=at if status is DeliveryStatus.DELIVERED else None,
            final=final,
            announced=False,
        )
