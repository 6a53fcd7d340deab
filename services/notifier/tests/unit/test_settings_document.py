"""Reading users' channels from the API's ``notification_settings`` documents."""

from __future__ import annotations

from integr8scode_notifier.adapters.mongo_settings import channels_from_document
from integr8scode_notifier.domain.notifications import (
    Channel,
    SlackTarget,
    UserChannels,
    WebhookTarget,
    redact_slack_url,
    redact_webhook_url,
)


def test_no_document_means_no_channels() -> None:
    assert channels_from_document(None).targets() == []


def test_both_channels_are_read_in_order() -> None:
    doc = {
        "_id": "u",
        "webhook": {"url": "https://a.test/hook", "secret": "s" * 16},
        "slack": {"webhook_url": "https://hooks.slack.com/services/T/B/X"},
    }
    channels = channels_from_document(doc)
    assert channels == UserChannels(
        WebhookTarget("https://a.test/hook", "s" * 16),
        SlackTarget("https://hooks.slack.com/services/T/B/X"),
    )
    assert [t.channel for t in channels.targets()] == [Channel.WEBHOOK, Channel.SLACK]


def test_removed_and_malformed_channels_are_skipped() -> None:
    doc: dict[str, object] = {"_id": "u", "webhook": None, "slack": {"url": "wrong-field"}}
    assert channels_from_document(doc).targets() == []
    doc = {"_id": "u", "webhook": {"url": "https://a.test/", "secret": None}, "slack": "junk"}
    assert channels_from_document(doc).targets() == [WebhookTarget("https://a.test/", None)]


def test_targets_are_recorded_without_their_secret_parts() -> None:
    assert redact_webhook_url("https://a.test:8443/in/hook?token=abc#x") == (
        "https://a.test:8443/in/hook"
    )
    assert redact_slack_url("https://hooks.slack.com/services/T1/B2/SECRET") == (
        "https://hooks.slack.com/***"
    )
