"""The key ring's text form and the settings fragment: what start-up accepts and refuses."""

from __future__ import annotations

import base64
import logging
import os

import pytest
from pydantic import ValidationError

from integr8scode_secrets import (
    LOCAL_KEY_ID,
    KeyRing,
    KeyRingError,
    SecretBox,
    SecretsSettings,
)

ENV = "INTEGR8SCODE_SECRETS_KEYS"


def _b64(raw: bytes, *, urlsafe: bool = False) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()


def test_the_text_form_keeps_order_and_accepts_both_alphabets() -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    ring = KeyRing.parse(f" new:{_b64(k2, urlsafe=True).rstrip('=')} , old:{_b64(k1)} ,")
    assert ring.ids == ("new", "old")
    assert ring.current == "new"
    assert (ring.key("new"), ring.key("old"), ring.key("other")) == (k2, k1, None)


def test_the_repr_shows_ids_only() -> None:
    key = os.urandom(32)
    ring = KeyRing.of([("k1", key)])
    assert "k1" in repr(ring)
    assert _b64(key) not in repr(ring)
    assert repr(key) not in repr(ring)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("k1", "id:base64-key"),
        (f"k1:{_b64(os.urandom(16))}", "16 bytes; AES-256 needs exactly 32"),
        ("k1:not base64!", "not valid base64"),
        (f"bad id:{_b64(os.urandom(32))}", "key id 'bad id'"),
        (f"k1:{_b64(os.urandom(32))},k1:{_b64(os.urandom(32))}", "appears twice"),
    ],
)
def test_unusable_rings_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        KeyRing.parse(text)


def test_a_short_key_stops_the_settings_naming_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = _b64(b"0123456789abcdef")
    monkeypatch.setenv(ENV, f"k1:{short}")
    with pytest.raises(ValidationError) as caught:
        SecretsSettings()
    assert ENV in str(caught.value)
    assert "exactly 32" in str(caught.value)
    assert short not in str(caught.value)


def test_a_configured_ring_is_used_in_any_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    monkeypatch.setenv(ENV, f"prod-1:{_b64(key)}")
    settings = SecretsSettings()
    assert _b64(key) not in repr(settings)
    for environment in ("production", "local"):
        ring = settings.key_ring(environment)
        assert (ring.current, ring.key("prod-1")) == ("prod-1", key)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_missing_ring_is_refused_outside_local_environments(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    with pytest.raises(KeyRingError, match=f"{ENV} must be set in environment 'production'"):
        SecretsSettings().key_ring("production")


def test_a_missing_ring_is_the_public_local_key_locally_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with caplog.at_level(logging.WARNING):
        first = SecretsSettings().key_ring("local")
    assert first.ids == (LOCAL_KEY_ID,)
    assert ENV in caplog.text
    # Every local process gets the same key: what the api seals, the notifier opens.
    sealed = SecretBox(first).seal("s", owner="u", field="f")
    assert SecretBox(SecretsSettings().key_ring("test")).open(sealed, owner="u", field="f") == "s"
