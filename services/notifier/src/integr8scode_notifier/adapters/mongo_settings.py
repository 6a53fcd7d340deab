"""Users' channels from ``notification_settings`` (written only by the API; read here).

Document: ``{_id: user_id, webhook: {url, secret} | null, slack: {webhook_url} | null,
updated_at}``. A channel whose stored shape is unusable is treated as not configured (and
logged without its values, which may hold secrets) rather than failing the event.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from integr8scode_notifier.domain.errors import StoreUnavailableError
from integr8scode_notifier.domain.notifications import SlackTarget, UserChannels, WebhookTarget

log = logging.getLogger(__name__)

COLLECTION = "notification_settings"


def channels_from_document(doc: dict[str, Any] | None) -> UserChannels:
    if doc is None:
        return UserChannels()
    webhook: WebhookTarget | None = None
    slack: SlackTarget | None = None
    raw_webhook = doc.get("webhook")
    if isinstance(raw_webhook, dict) and isinstance(raw_webhook.get("url"), str):
        secret = raw_webhook.get("secret")
        webhook = WebhookTarget(raw_webhook["url"], secret if isinstance(secret, str) else None)
    elif raw_webhook is not None:
        log.warning("ignoring a malformed webhook setting of user %s", doc.get("_id"))
    raw_slack = doc.get("slack")
    if isinstance(raw_slack, dict) and isinstance(raw_slack.get("webhook_url"), str):
        slack = SlackTarget(raw_slack["webhook_url"])
    elif raw_slack is not None:
        log.warning("ignoring a malformed slack setting of user %s", doc.get("_id"))
    return UserChannels(webhook=webhook, slack=slack)


class MongoSettingsSource:
    """``SettingsSource`` on ``notification_settings``, by ``_id`` only."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection

    async def channels_for(self, user_id: str) -> UserChannels:
        try:
            doc = await self._c.find_one({"_id": user_id})
        except PyMongoError as exc:
            raise StoreUnavailableError(f"settings store unavailable: {exc}") from exc
        return channels_from_document(doc)
