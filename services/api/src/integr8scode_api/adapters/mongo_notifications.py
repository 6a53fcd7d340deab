"""Notification settings and deliveries on Mongo.

``notification_settings`` is the API's: one document per user, replaced whole on every PUT (an
upsert by ``_id``)::

    {_id: user_id,
     webhook: {target, url: <sealed>, secret: <sealed> | null} | null,
     slack: {target, webhook_url: <sealed>} | null,
     updated_at}

Every credential is sealed (libs/secrets) for its owner, the user id, and its field
(``webhook.url``, ``webhook.secret``, ``slack.webhook_url``): the notifier opens them with the
same names. ``target`` is what may be shown (``domain.notifications.mask_*``). Documents written
before sealing hold the plaintext strings and no ``target``: they are read as legacy, shown
masked, and sealed by the next PUT or by ``rotate-secrets`` (``reseal_all``).

``notifications`` belongs to the notifier; the API only lists a user's records (the notifier
creates the ``user_id, created_at`` index).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.notifications import (
    NewSettings,
    NotificationView,
    StoredSettings,
    mask_slack_url,
    mask_webhook_url,
)
from integr8scode_secrets import SecretBox, UnsealError, is_sealed

T = TypeVar("T")

log = logging.getLogger(__name__)

SETTINGS_COLLECTION = "notification_settings"
NOTIFICATIONS_COLLECTION = "notifications"
# The sealed fields, named as the associated data binds them (the notifier uses the same names).
WEBHOOK_URL, WEBHOOK_SECRET, SLACK_URL = "webhook.url", "webhook.secret", "slack.webhook_url"


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def settings_document(settings: NewSettings, box: SecretBox) -> dict[str, Any]:
    """The stored form of ``settings``: every credential sealed under the current key."""
    owner = settings.user_id

    def seal(value: str, name: str) -> dict[str, Any]:
        return box.seal(value, owner=owner, field=name)

    webhook = None
    if settings.webhook_url:
        webhook = {
            "target": mask_webhook_url(settings.webhook_url),
            "url": seal(settings.webhook_url, WEBHOOK_URL),
            "secret": (
                seal(settings.webhook_secret, WEBHOOK_SECRET) if settings.webhook_secret else None
            ),
        }
    slack = None
    if settings.slack_webhook_url:
        slack = {
            "target": mask_slack_url(settings.slack_webhook_url),
            "webhook_url": seal(settings.slack_webhook_url, SLACK_URL),
        }
    return {"_id": owner, "webhook": webhook, "slack": slack, "updated_at": settings.updated_at}


def _shown(sub: dict[str, Any], key: str, mask: Any) -> str | None:
    # ``target`` when sealed; a legacy document's plaintext, masked here.
    target = sub.get("target")
    if isinstance(target, str):
        return target
    legacy = sub.get(key)
    return mask(legacy) if isinstance(legacy, str) and legacy else None


def settings_of(doc: dict[str, Any]) -> StoredSettings:
    """What the API shows of a stored document (sealed or legacy); opens nothing."""
    webhook = doc.get("webhook") or {}
    slack = doc.get("slack") or {}
    return StoredSettings(
        user_id=doc["_id"],
        webhook_target=_shown(webhook, "url", mask_webhook_url),
        webhook_has_secret=bool(webhook.get("secret")),
        slack_target=_shown(slack, "webhook_url", mask_slack_url),
        updated_at=_aware(doc.get("updated_at")),
    )


def _open(value: Any, box: SecretBox, owner: str, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):  # legacy plaintext
        return value
    return box.open(value, owner=owner, field=name)


def plaintext_of(doc: dict[str, Any], box: SecretBox) -> NewSettings:
    """Every credential of ``doc`` opened (legacy plaintext taken as is); ``UnsealError`` when
    one can't be."""
    owner = doc["_id"]
    webhook = doc.get("webhook") or {}
    slack = doc.get("slack") or {}
    return NewSettings(
        user_id=owner,
        webhook_url=_open(webhook.get("url"), box, owner, WEBHOOK_URL),
        webhook_secret=_open(webhook.get("secret"), box, owner, WEBHOOK_SECRET),
        slack_webhook_url=_open(slack.get("webhook_url"), box, owner, SLACK_URL),
        updated_at=_aware(doc.get("updated_at")),
    )


def is_current(doc: dict[str, Any], box: SecretBox) -> bool:
    """Every credential of ``doc`` sealed under the current key (nothing to re-seal)."""
    webhook = doc.get("webhook") or {}
    slack = doc.get("slack") or {}
    values = [webhook.get("url"), webhook.get("secret"), slack.get("webhook_url")]
    present = [v for v in values if v is not None and v != ""]
    if (webhook and "target" not in webhook) or (slack and "target" not in slack):
        return False
    return all(is_sealed(v) and box.is_current(v) for v in present)


@dataclass
class ResealReport:
    """What ``reseal_all`` did under key ``key_id``; ``failed`` lists user ids and reasons,
    never a value."""

    key_id: str
    resealed: int = 0
    current: int = 0
    changed_meanwhile: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


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


async def _call(awaitable: Awaitable[T], what: str) -> T:
    try:
        return await awaitable
    except PyMongoError as exc:
        raise DependencyUnavailableError(
            f"{what} unavailable: {type(exc).__name__}", dependency="mongo"
        ) from exc


class MongoNotificationSettings:
    """``NotificationSettingsStore`` on ``notification_settings``, by ``_id`` only; seals with
    ``box``."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], box: SecretBox) -> None:
        self._c = collection
        self._box = box

    async def get(self, user_id: str) -> StoredSettings | None:
        doc = await _call(self._c.find_one({"_id": user_id}), "notification settings")
        return None if doc is None else settings_of(doc)

    async def put(self, settings: NewSettings) -> None:
        doc = settings_document(settings, self._box)
        await _call(
            self._c.replace_one({"_id": settings.user_id}, doc, upsert=True),
            "notification settings",
        )

    async def reseal_all(self) -> ResealReport:
        """Re-seal every document whose credentials are not all under the current key (legacy
        plaintext included). Each write is conditional on ``updated_at``: a PUT that came in
        meanwhile (sealed under the current key by then) is left as it is."""
        report = ResealReport(key_id=self._box.ring.current)
        cursor = self._c.find({}).sort("_id", 1)
        async for doc in _iterate(cursor):
            if is_current(doc, self._box):
                report.current += 1
                continue
            try:
                opened = plaintext_of(doc, self._box)
            except UnsealError as exc:
                # No stack trace: the reason is the whole story, and it never holds the value.
                log.error("settings of user %s can't be re-sealed: %s", doc["_id"], exc)  # noqa: TRY400
                report.failed.append((str(doc["_id"]), str(exc)))
                continue
            result = await _call(
                self._c.replace_one(
                    {"_id": doc["_id"], "updated_at": doc.get("updated_at")},
                    settings_document(opened, self._box),
                ),
                "notification settings",
            )
            if result.matched_count:
                report.resealed += 1
            else:
                report.changed_meanwhile += 1
        return report


async def _iterate(cursor: Any) -> AsyncIterator[dict[str, Any]]:
    try:
        async for doc in cursor:
            yield doc
    except PyMongoError as exc:
        raise DependencyUnavailableError(
            f"notification settings unavailable: {type(exc).__name__}", dependency="mongo"
        ) from exc


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
