"""Users' channels from ``notification_settings`` (written only by the API; read here).

Document: ``{_id: user_id, webhook: {target, url, secret} | null, slack: {target, webhook_url} |
null, updated_at}`` where ``url``, ``secret`` and ``webhook_url`` are sealed (libs/secrets) for
the user id and the fields ``webhook.url``, ``webhook.secret``, ``slack.webhook_url`` (the
API's names), and ``target`` is what may be shown. Documents from before sealing hold plaintext
strings and no ``target``: they are read as they are (the API's ``rotate-secrets`` seals them).

Nothing is opened here: each channel carries a ``reveal`` that opens its credentials when the
delivery needs them. A channel whose stored shape is unusable is treated as not configured
(and logged without its values) rather than failing the event.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from integr8scode_notifier.domain.errors import SecretUnavailableError, StoreUnavailableError
from integr8scode_notifier.domain.notifications import (
    Channel,
    ChannelSetting,
    SlackTarget,
    UserChannels,
    WebhookTarget,
    redact_slack_url,
    redact_webhook_url,
)
from integr8scode_secrets import SecretBox, UnsealError, is_sealed

log = logging.getLogger(__name__)

COLLECTION = "notification_settings"
WEBHOOK_URL, WEBHOOK_SECRET, SLACK_URL = "webhook.url", "webhook.secret", "slack.webhook_url"


def _usable(value: object) -> bool:
    return (isinstance(value, str) and bool(value)) or is_sealed(value)


def _shown(sub: dict[str, Any], value: object, redact: Any) -> str:
    target = sub.get("target")
    if isinstance(target, str):
        return target
    return redact(value) if isinstance(value, str) else "(sealed)"


class _Opener:
    """Opens one user's stored values, translating the lib's errors into the notifier's."""

    def __init__(self, box: SecretBox, owner: str) -> None:
        self._box = box
        self._owner = owner

    def __call__(self, value: object, name: str) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):  # legacy plaintext
            return value
        try:
            return self._box.open(value, owner=self._owner, field=name)
        except UnsealError as exc:
            raise SecretUnavailableError(f"stored credential can't be opened: {exc}") from None


def channels_from_document(doc: dict[str, Any] | None, box: SecretBox) -> UserChannels:
    if doc is None:
        return UserChannels()
    opener = _Opener(box, str(doc.get("_id")))
    webhook: ChannelSetting | None = None
    slack: ChannelSetting | None = None
    raw_webhook = doc.get("webhook")
    if isinstance(raw_webhook, dict) and _usable(raw_webhook.get("url")):
        url, secret = raw_webhook["url"], raw_webhook.get("secret")

        def reveal_webhook() -> WebhookTarget:
            return WebhookTarget(opener(url, WEBHOOK_URL) or "", opener(secret, WEBHOOK_SECRET))

        webhook = ChannelSetting(
            Channel.WEBHOOK, _shown(raw_webhook, url, redact_webhook_url), reveal_webhook
        )
    elif raw_webhook is not None:
        log.warning("ignoring a malformed webhook setting of user %s", doc.get("_id"))
    raw_slack = doc.get("slack")
    if isinstance(raw_slack, dict) and _usable(raw_slack.get("webhook_url")):
        slack_url = raw_slack["webhook_url"]

        def reveal_slack() -> SlackTarget:
            return SlackTarget(opener(slack_url, SLACK_URL) or "")

        slack = ChannelSetting(
            Channel.SLACK, _shown(raw_slack, slack_url, redact_slack_url), reveal_slack
        )
    elif raw_slack is not None:
        log.warning("ignoring a malformed slack setting of user %s", doc.get("_id"))
    return UserChannels(webhook=webhook, slack=slack)


class MongoSettingsSource:
    """``SettingsSource`` on ``notification_settings``, by ``_id`` only; opens with ``box``."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], box: SecretBox) -> None:
        self._c = collection
        self._box = box

    async def channels_for(self, user_id: str) -> UserChannels:
        try:
            doc = await self._c.find_one({"_id": user_id})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"settings store unavailable: {exc}") from exc
        return channels_from_document(doc, self._box)
