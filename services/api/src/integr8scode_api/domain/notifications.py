"""Notification settings and deliveries as the public API sees them.

A user configures at most one webhook (a URL and an optional signing secret) and one Slack
incoming webhook. The rules here are about form: an http(s) URL of bounded length with a host,
no user information and no fragment; a secret of 16 to 256 characters. Whether a target may be
called at all (public address, not the loopback or a private network) is decided by the
notifier when it delivers, against what the name resolves to then. Credentials never leave the
API again, and are stored sealed (libs/secrets): the settings come back with ``has_secret``, the
webhook URL without its query (where receivers often put a token) and the Slack URL (itself a
credential) masked after its host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from integr8scode_api.domain.errors import ValidationFailedError

URL_MAX = 2048
SECRET_MIN = 16
SECRET_MAX = 256
_HOST = re.compile(r"^[A-Za-z0-9.-]+$")


def check_url(value: str) -> str:
    """``value`` if it is an acceptable http(s) URL; ``ValueError`` saying why not."""
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if "@" in parts.netloc:
        raise ValueError("must not contain user information (user:password@)")
    host = parts.hostname
    if not host:
        raise ValueError("must name a host")
    if not (host.startswith("[") or ":" in host or _HOST.match(_ascii_host(host))):
        raise ValueError("has an invalid host name")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.fragment or value.endswith("#"):
        raise ValueError("must not contain a fragment (#...): it is never sent")
    return value


def _ascii_host(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return "\x00"  # fails the host pattern


HttpUrl = Annotated[str, Field(min_length=1, max_length=URL_MAX), AfterValidator(check_url)]


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(examples=["https://example.com/hooks/integr8scode"])
    secret: str | None = Field(
        default=None,
        min_length=SECRET_MIN,
        max_length=SECRET_MAX,
        description="Signs every delivery (X-Integr8scode-Signature); never returned.",
    )


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: HttpUrl = Field(
        description="A Slack incoming-webhook URL; https unless the API allows http.",
        examples=["https://hooks.slack.com/services/T000/B000/XXXX"],
    )


class NotificationSettingsRequest(BaseModel):
    """Body of ``PUT /api/v1/notifications/settings``: the whole configuration; a channel that
    is null or absent is removed."""

    model_config = ConfigDict(extra="forbid")

    webhook: WebhookSettings | None = None
    slack: SlackSettings | None = None


@dataclass(frozen=True)
class NewSettings:
    """One user's configuration as a PUT gives it, credentials in plaintext: the store seals
    them before they are written (collection ``notification_settings``)."""

    user_id: str
    webhook_url: str | None
    webhook_secret: str | None
    slack_webhook_url: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class StoredSettings:
    """One user's configuration as the API reads it back: what may be shown, no credential."""

    user_id: str
    webhook_target: str | None
    webhook_has_secret: bool
    slack_target: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, new: NewSettings) -> StoredSettings:
        return cls(
            user_id=new.user_id,
            webhook_target=mask_webhook_url(new.webhook_url) if new.webhook_url else None,
            webhook_has_secret=bool(new.webhook_secret),
            slack_target=mask_slack_url(new.slack_webhook_url) if new.slack_webhook_url else None,
            updated_at=new.updated_at,
        )


@dataclass(frozen=True)
class NotificationPolicy:
    allow_http_slack: bool


def validate_settings(request: NotificationSettingsRequest, policy: NotificationPolicy) -> None:
    """The rules that depend on configuration; ``ValidationFailedError`` (422) saying what is
    wrong."""
    slack = request.slack
    if (
        slack is not None
        and not policy.allow_http_slack
        and urlsplit(slack.webhook_url).scheme.lower() != "https"
    ):
        raise ValidationFailedError(
            "invalid request: slack.webhook_url: must be an https:// URL "
            "(http is accepted only where API_NOTIFICATIONS_ALLOW_HTTP is set)"
        )


def mask_slack_url(url: str) -> str:
    """A Slack incoming-webhook URL is a credential (its path is the token): keep the host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/***"


def mask_webhook_url(url: str) -> str:
    """Scheme, host, port and path; a query (often a token) shows as ``?***``."""
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
    return f"{shown}?***" if parts.query or url.endswith("?") else shown


class WebhookView(BaseModel):
    url: str = Field(description="The URL without its query (shown as ?***): it may hold a token.")
    has_secret: bool


class SlackView(BaseModel):
    target: str = Field(description="The webhook URL masked after its host (it is a credential).")


class NotificationSettingsView(BaseModel):
    """``GET``/``PUT /api/v1/notifications/settings``: secrets masked, never echoed."""

    webhook: WebhookView | None = None
    slack: SlackView | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, stored: StoredSettings | None) -> NotificationSettingsView:
        if stored is None:
            return cls()
        webhook = (
            WebhookView(url=stored.webhook_target, has_secret=stored.webhook_has_secret)
            if stored.webhook_target
            else None
        )
        slack = SlackView(target=stored.slack_target) if stored.slack_target else None
        return cls(webhook=webhook, slack=slack, updated_at=stored.updated_at)


class NotificationView(BaseModel):
    """One delivery of one notification over one channel, as the notifier recorded it."""

    notification_id: str
    execution_id: str
    event_type: str
    channel: str = Field(examples=["webhook", "slack"])
    target: str = Field(description="The URL without its secret parts.")
    status: str = Field(examples=["pending", "delivered", "failed", "refused"])
    attempts: int
    last_status_code: int | None = None
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None
    trace_id: str | None = None


class NotificationPage(BaseModel):
    items: list[NotificationView]
    limit: int
    offset: int
    total: int
