"""Reading users' channels from the API's ``notification_settings`` documents: sealed
credentials opened only on ``reveal``, legacy plaintext read as it is."""

from __future__ import annotations

import os
from typing import Any

import pytest

from integr8scode_notifier.adapters.mongo_settings import channels_from_document
from integr8scode_notifier.app import create_app
from integr8scode_notifier.config import Settings
from integr8scode_notifier.domain.errors import SecretUnavailableError
from integr8scode_notifier.domain.notifications import (
    Channel,
    SlackTarget,
    WebhookTarget,
    redact_slack_url,
    redact_webhook_url,
)
from integr8scode_secrets import KeyRing, KeyRingError, SecretBox

BOX = SecretBox(KeyRing.of([("k1", os.urandom(32))]))
SECRET = "s" * 16
SLACK_URL = "https://hooks.slack.com/services/T/B/X"


def _sealed_doc(owner: str = "u", box: SecretBox = BOX) -> dict[str, Any]:
    """What the API writes (its adapter's field names and the same associated data)."""
    return {
        "_id": owner,
        "webhook": {
            "target": "https://a.test/hook?***",
            "url": box.seal("https://a.test/hook?token=t", owner=owner, field="webhook.url"),
            "secret": box.seal(SECRET, owner=owner, field="webhook.secret"),
        },
        "slack": {
            "target": "https://hooks.slack.com/***",
            "webhook_url": box.seal(SLACK_URL, owner=owner, field="slack.webhook_url"),
        },
    }


def test_no_document_means_no_channels() -> None:
    assert channels_from_document(None, BOX).targets() == []


def test_sealed_channels_show_their_target_and_open_on_reveal() -> None:
    channels = channels_from_document(_sealed_doc(), BOX)
    webhook, slack = channels.targets()
    assert (webhook.channel, webhook.redacted) == (Channel.WEBHOOK, "https://a.test/hook?***")
    assert (slack.channel, slack.redacted) == (Channel.SLACK, "https://hooks.slack.com/***")
    assert "token=t" not in repr(channels)
    assert webhook.reveal() == WebhookTarget("https://a.test/hook?token=t", SECRET)
    assert slack.reveal() == SlackTarget(SLACK_URL)


def test_a_value_that_cant_be_opened_fails_on_reveal_naming_the_reason_not_the_value() -> None:
    other_ring = SecretBox(KeyRing.of([("k9", os.urandom(32))]))
    unknown_key = channels_from_document(_sealed_doc(box=other_ring), BOX)
    assert unknown_key.webhook is not None
    with pytest.raises(SecretUnavailableError, match="key id 'k9'"):
        unknown_key.webhook.reveal()
    # Another user's document copied under this user's id: authentication fails.
    copied = {**_sealed_doc(owner="victim"), "_id": "attacker"}
    channels = channels_from_document(copied, BOX)
    assert channels.slack is not None
    with pytest.raises(SecretUnavailableError, match="authentication failed") as caught:
        channels.slack.reveal()
    assert "services/T/B/X" not in str(caught.value)


def test_a_junk_secret_fails_rather_than_sending_unsigned() -> None:
    doc = _sealed_doc()
    doc["webhook"]["secret"] = {"unexpected": 1}
    channels = channels_from_document(doc, BOX)
    assert channels.webhook is not None
    with pytest.raises(SecretUnavailableError, match="not a sealed value"):
        channels.webhook.reveal()


def test_legacy_plaintext_is_read_in_order() -> None:
    doc = {
        "_id": "u",
        "webhook": {"url": "https://a.test/hook?token=t", "secret": SECRET},
        "slack": {"webhook_url": SLACK_URL},
    }
    channels = channels_from_document(doc, BOX)
    assert [t.channel for t in channels.targets()] == [Channel.WEBHOOK, Channel.SLACK]
    assert [t.redacted for t in channels.targets()] == [
        "https://a.test/hook",
        "https://hooks.slack.com/***",
    ]
    assert [t.reveal() for t in channels.targets()] == [
        WebhookTarget("https://a.test/hook?token=t", SECRET),
        SlackTarget(SLACK_URL),
    ]


def test_removed_and_malformed_channels_are_skipped() -> None:
    doc: dict[str, object] = {"_id": "u", "webhook": None, "slack": {"url": "wrong-field"}}
    assert channels_from_document(doc, BOX).targets() == []
    doc = {"_id": "u", "webhook": {"url": "https://a.test/", "secret": None}, "slack": "junk"}
    (webhook,) = channels_from_document(doc, BOX).targets()
    assert webhook.reveal() == WebhookTarget("https://a.test/", None)


def test_targets_are_recorded_without_their_secret_parts() -> None:
    assert redact_webhook_url("https://a.test:8443/in/hook?token=abc#x") == (
        "https://a.test:8443/in/hook"
    )
    assert redact_slack_url("https://hooks.slack.com/services/T1/B2/SECRET") == (
        "https://hooks.slack.com/***"
    )


def test_the_notifier_refuses_to_start_without_a_key_ring_outside_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INTEGR8SCODE_SECRETS_KEYS", raising=False)
    settings = Settings.model_validate(
        {"telemetry": {"environment": "production", "sdk_disabled": True}}
    )
    with pytest.raises(KeyRingError, match="INTEGR8SCODE_SECRETS_KEYS must be set"):
        create_app(settings)
