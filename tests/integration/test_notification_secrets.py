"""The sealed-credentials contract between the api (writes ``notification_settings``) and the
notifier (reads it), over the real Mongo-wire server: what is stored is not the plaintext, and
what the notifier opens is exactly what the api was given. Both services' own adapters, with a
key ring each, as two processes would have them."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest

from integr8scode_api.adapters.mongo_notifications import MongoNotificationSettings
from integr8scode_api.domain.notifications import NewSettings
from integr8scode_notifier.adapters.mongo_settings import MongoSettingsSource
from integr8scode_notifier.domain.errors import SecretUnavailableError
from integr8scode_notifier.domain.notifications import SlackTarget, WebhookTarget
from integr8scode_secrets import KeyRing, SecretBox

WEBHOOK_URL = "https://hooks.example.test/in?token=QUERYSECRET"
WEBHOOK_SECRET = "whsec-integration-0123456789"
SLACK_URL = "https://hooks.slack.com/services/T1/B2/SLACKSECRET"
K1, K2 = ("k1", os.urandom(32)), ("k2", os.urandom(32))


def _settings(user_id: str) -> NewSettings:
    return NewSettings(
        user_id=user_id,
        webhook_url=WEBHOOK_URL,
        webhook_secret=WEBHOOK_SECRET,
        slack_webhook_url=SLACK_URL,
        updated_at=datetime.now(UTC).replace(microsecond=0),
    )


async def test_the_notifier_opens_what_the_api_sealed_and_mongo_holds_no_plaintext(
    db: Any,
) -> None:
    collection = db["notification_settings"]
    api = MongoNotificationSettings(collection, SecretBox(KeyRing.of([K1])))
    # The notifier mid-rotation: a newer key first, the api's key still in its ring.
    notifier = MongoSettingsSource(collection, SecretBox(KeyRing.of([K2, K1])))
    await api.put(_settings("user-a"))

    raw = await collection.find_one({"_id": "user-a"})
    assert raw is not None
    for plaintext in ("QUERYSECRET", WEBHOOK_SECRET, "SLACKSECRET", "T1/B2"):
        assert plaintext not in repr(raw)

    channels = await notifier.channels_for("user-a")
    assert [t.redacted for t in channels.targets()] == [
        "https://hooks.example.test/in?***",
        "https://hooks.slack.com/***",
    ]
    assert [t.reveal() for t in channels.targets()] == [
        WebhookTarget(WEBHOOK_URL, WEBHOOK_SECRET),
        SlackTarget(SLACK_URL),
    ]
    shown = await api.get("user-a")
    assert shown is not None
    assert (shown.webhook_target, shown.webhook_has_secret) == (
        "https://hooks.example.test/in?***",
        True,
    )


async def test_a_notifier_without_the_api_key_or_a_swapped_document_cannot_open(
    db: Any,
) -> None:
    collection = db["notification_settings"]
    api = MongoNotificationSettings(collection, SecretBox(KeyRing.of([K1])))
    await api.put(_settings("victim"))

    stale = MongoSettingsSource(collection, SecretBox(KeyRing.of([K2])))
    webhook = (await stale.channels_for("victim")).webhook
    assert webhook is not None
    with pytest.raises(SecretUnavailableError, match="key id 'k1'"):
        webhook.reveal()

    # The victim's sealed values copied into another user's document don't open for them.
    doc = await collection.find_one({"_id": "victim"})
    assert doc is not None
    await collection.insert_one({**doc, "_id": "attacker"})
    notifier = MongoSettingsSource(collection, SecretBox(KeyRing.of([K1])))
    for setting in (await notifier.channels_for("attacker")).targets():
        with pytest.raises(SecretUnavailableError, match="authentication failed"):
            setting.reveal()
