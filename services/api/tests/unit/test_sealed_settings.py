"""The stored form of notification settings: credentials sealed for their user and field,
legacy plaintext read and re-sealed, and the start-up refusal without a key ring."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest

from integr8scode_api.adapters.mongo_notifications import (
    is_current,
    plaintext_of,
    settings_document,
    settings_of,
)
from integr8scode_api.app import create_app
from integr8scode_api.config import Settings
from integr8scode_api.domain.notifications import NewSettings
from integr8scode_secrets import KeyRing, KeyRingError, SecretBox, TamperedError, UnknownKeyError

WEBHOOK_URL = "https://example.com/hook?token=QUERYTOKEN"
SECRET = "whsec-0123456789abcdef"
SLACK_URL = "https://hooks.slack.com/services/T1/B2/SLACKTOKEN"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
K1, K2 = ("k1", os.urandom(32)), ("k2", os.urandom(32))


def _new(user_id: str = "u1") -> NewSettings:
    return NewSettings(
        user_id=user_id,
        webhook_url=WEBHOOK_URL,
        webhook_secret=SECRET,
        slack_webhook_url=SLACK_URL,
        updated_at=AT,
    )


def test_the_document_holds_no_plaintext_credential_and_opens_to_what_was_put() -> None:
    box = SecretBox(KeyRing.of([K1]))
    doc = settings_document(_new(), box)
    text = repr(doc)
    for plaintext in ("QUERYTOKEN", SECRET, "SLACKTOKEN"):
        assert plaintext not in text
    assert doc["webhook"]["target"] == "https://example.com/hook?***"
    assert doc["slack"]["target"] == "https://hooks.slack.com/***"
    assert {doc["webhook"]["url"]["kid"], doc["slack"]["webhook_url"]["kid"]} == {"k1"}
    assert plaintext_of(doc, box) == _new()
    assert is_current(doc, box)
    shown = settings_of(doc)
    assert (shown.webhook_target, shown.webhook_has_secret, shown.slack_target) == (
        "https://example.com/hook?***",
        True,
        "https://hooks.slack.com/***",
    )


def test_a_document_copied_to_another_user_does_not_open() -> None:
    box = SecretBox(KeyRing.of([K1]))
    stolen = {**settings_document(_new("victim"), box), "_id": "attacker"}
    with pytest.raises(TamperedError):
        plaintext_of(stolen, box)


def test_legacy_plaintext_is_shown_masked_and_needs_resealing() -> None:
    box = SecretBox(KeyRing.of([K1]))
    legacy: dict[str, Any] = {
        "_id": "u1",
        "webhook": {"url": WEBHOOK_URL, "secret": SECRET},
        "slack": {"webhook_url": SLACK_URL},
        "updated_at": AT,
    }
    shown = settings_of(legacy)
    assert shown.webhook_target == "https://example.com/hook?***"
    assert shown.slack_target == "https://hooks.slack.com/***"
    assert shown.webhook_has_secret
    assert not is_current(legacy, box)
    assert plaintext_of(legacy, box) == _new()


def test_a_document_under_an_older_key_needs_resealing_and_one_under_a_dropped_key_fails() -> None:
    old_doc = settings_document(_new(), SecretBox(KeyRing.of([K1])))
    rotating = SecretBox(KeyRing.of([K2, K1]))
    assert not is_current(old_doc, rotating)
    resealed = settings_document(plaintext_of(old_doc, rotating), rotating)
    assert is_current(resealed, rotating)
    with pytest.raises(UnknownKeyError):
        plaintext_of(old_doc, SecretBox(KeyRing.of([K2])))


def test_removed_channels_are_stored_as_null() -> None:
    box = SecretBox(KeyRing.of([K1]))
    doc = settings_document(NewSettings("u1", None, None, None, AT), box)
    assert (doc["webhook"], doc["slack"]) == (None, None)
    assert is_current(doc, box)
    without_secret = settings_document(NewSettings("u1", "https://a.test/", None, None, AT), box)
    assert without_secret["webhook"]["secret"] is None
    assert settings_of(without_secret).webhook_has_secret is False


def test_the_api_refuses_to_start_without_a_key_ring_outside_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INTEGR8SCODE_SECRETS_KEYS", raising=False)
    settings = Settings.model_validate(
        {
            "auth": {"jwt_secret": "j" * 40, "admin_password": "a-strong-admin-password"},
            "telemetry": {"environment": "production", "sdk_disabled": True},
        }
    )
    with pytest.raises(KeyRingError, match="INTEGR8SCODE_SECRETS_KEYS must be set"):
        create_app(settings)
