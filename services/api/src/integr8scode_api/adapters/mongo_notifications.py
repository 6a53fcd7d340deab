"""Notification settings and deliveries on Mongo.

``notification_settings`` is the API's: one document per user, ``{_id: user_id, webhook: {url,
secret} | null, slack: {webhook_url} | null, updated_at}``, replaced whole on every PUT (an
upsert by ``_id``). ``notifications`` belongs to the notifier; the API only lists a user's
records (the notifier creates the ``user_id, created_at`` index).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from integr8scode_api.domain.errors import DependencyUnavailable
from integr8scode_api.domain.notifications import NotificationView, StoredSettings

SETTINGS_COLLECTION = "notification_settings"
NOTIFICATIONS_COLLECTION = "notifications"


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def settings_document(settings: StoredSettings) -> dict[str, Any]:
    return {
        "_id": settings.user_id,
        "webhook": (
            {"url": settings.webhook_url, "secret": settings.webhook_secret}
            if settings.webhook_url
            else None
        ),
        "slack": (
            {"webhook_url": settings.slack_webhook_url} if settings.slack_webhook_url else None
        ),
        "updated_at": settings.updated_at,
    }


def settings_of(doc: dict[str, Any]) -> StoredSettings:
    webhook = doc.get("webhook") or {}
    slack = doc.get("slack") or {}
    return StoredSettings(
        user_id=doc["_id"],
        webhook_url=webhook.get("url"),
        webhook_secret=webhook.get("secret"),
        slack_webhook_url=slack.get("webhook_url"),
        updated_at=_aware(doc.get("updated_at")),
    )


def notification_of(doc: dict[str, Any]) -> NotificationView:
    created = _aware(doc.get("created_at")) or datetime.fromtimestamp(0, UTC)
    return NotificationView(
        notification_id=doc["_id"],
        execution_id=doc.get("execution_id", ""),
        event_type=doc.get("event_type", ""),
        channel=doc.get("channel", ""),
        target=doc.get("target", ""),
        status=doc.get("status", "pending"),
        attempts=int(doc.get("attempts", 0)),
        last_status_code=doc.get("last_status_code"),
        error=doc.get("error"),
        created_at=created,
        updated_at=_aware(doc.get("updated_at")) or created,
        delivered_at=_aware(doc.get("delivered_at")),
        trace_id=doc.get("trace_id"),
    )


async def _call(awaitable: Any, what: str) -> Any:
    try:
        return await awaitable
    except PyMongoError as exc:
        raise DependencyUnavailable(
            f"{what} unavailable: {type(exc).__name__}", dependency="mongo"
        ) from exc


class MongoNotificationSettings:
    """``NotificationSettingsStore`` on ``notification_settings``, by ``_id`` only."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection

    async def get(self, user_id: str) -> StoredSettings | None:
        doc = await _call(self._c.find_one({"_id": user_id}), "notification settings")
        return None if doc is None else settings_of(doc)

    async def put(self, settings: StoredSettings) -> None:
        doc = settings_document(settings)
        await _call(
            self._c.replace_one({"_id": settings.user_id}, doc, upsert=True),
            "notification settings",
        )


class MongoNotificationLog:
    """``NotificationLog`` on the notifier's ``notifications`` (read-only)."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._c = collection

    async def list_for_user(
        self, user_id: str, *, execution_id: str | None, limit: int, offset: int
    ) -> tuple[list[NotificationView], int]:
        query: dict[str, Any] = {"user_id": user_id}
        if execution_id is not None:
            query["execution_id"] = execution_id
        cursor = (
            self._c.find(query, {"idempotency_key": 0})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        docs = await _call(cursor.to_list(), "notification log")
        total = await _call(self._c.count_documents(query), "notification log")
        return [notification_of(doc) for doc in docs], int(total)
