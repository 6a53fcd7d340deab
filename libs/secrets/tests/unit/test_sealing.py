"""The sealed format: round trip, binding to owner and field, tampering, unknown keys, and
rotation order (the first key seals, every key opens)."""

from __future__ import annotations

import base64
import os

import pytest

from integr8scode_secrets import (
    FORMAT_VERSION,
    KeyRing,
    SecretBox,
    TamperedError,
    UnknownKeyError,
    is_sealed,
)

SECRET = "whsec-0123456789-abcdef"
OWNER = "user-1"


def _ring(*ids: str) -> KeyRing:
    return KeyRing.of((key_id, os.urandom(32)) for key_id in ids)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(_ring("k1"))


def test_a_sealed_value_opens_to_its_plaintext_and_does_not_contain_it(box: SecretBox) -> None:
    sealed = box.seal(SECRET, owner=OWNER, field="webhook.secret")
    assert set(sealed) == {"v", "kid", "ct"}
    assert (sealed["v"], sealed["kid"]) == (FORMAT_VERSION, "k1")
    assert SECRET not in repr(sealed)
    assert is_sealed(sealed)
    assert box.open(sealed, owner=OWNER, field="webhook.secret") == SECRET


def test_non_ascii_and_empty_plaintexts_round_trip(box: SecretBox) -> None:
    for text in ("", "ключ-🔑", "x" * 4096):
        assert box.open(box.seal(text, owner=OWNER, field="f"), owner=OWNER, field="f") == text


def test_sealing_twice_gives_different_ciphertexts(box: SecretBox) -> None:
    first = box.seal(SECRET, owner=OWNER, field="f")
    second = box.seal(SECRET, owner=OWNER, field="f")
    assert first["ct"] != second["ct"]  # a fresh nonce each time: equal secrets don't show


def test_a_value_moved_to_another_user_does_not_open(box: SecretBox) -> None:
    sealed = box.seal(SECRET, owner=OWNER, field="webhook.secret")
    with pytest.raises(TamperedError, match="authentication failed"):
        box.open(sealed, owner="user-2", field="webhook.secret")


def test_a_value_moved_to_another_field_does_not_open(box: SecretBox) -> None:
    sealed = box.seal(SECRET, owner=OWNER, field="webhook.secret")
    with pytest.raises(TamperedError, match="authentication failed"):
        box.open(sealed, owner=OWNER, field="slack.webhook_url")


def test_any_flipped_bit_is_detected(box: SecretBox) -> None:
    sealed = box.seal(SECRET, owner=OWNER, field="f")
    raw = bytearray(base64.urlsafe_b64decode(sealed["ct"] + "=" * (-len(sealed["ct"]) % 4)))
    for index in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        token = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
        with pytest.raises(TamperedError):
            box.open({**sealed, "ct": token}, owner=OWNER, field="f")


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("plain text", "not a sealed value"),
        ({"v": 1, "kid": "k1"}, "not a sealed value"),
        ({"v": 2, "kid": "k1", "ct": "AAAA"}, "unsupported sealed format version 2"),
        ({"v": True, "kid": "k1", "ct": "AAAA"}, "unsupported sealed format version"),
        ({"v": 1, "kid": "k1", "ct": 5}, "malformed sealed value"),
        ({"v": 1, "kid": "k1", "ct": "!!!"}, "malformed ciphertext"),
        ({"v": 1, "kid": "k1", "ct": "AAAA"}, "too short"),
    ],
)
def test_malformed_stored_values_are_refused_with_a_reason(
    box: SecretBox, stored: object, message: str
) -> None:
    with pytest.raises(TamperedError, match=message):
        box.open(stored, owner=OWNER, field="f")


def test_a_relabelled_key_id_does_not_open() -> None:
    ring = _ring("k2", "k1")
    box = SecretBox(ring)
    sealed = box.seal(SECRET, owner=OWNER, field="f")
    with pytest.raises(TamperedError):
        box.open({**sealed, "kid": "k1"}, owner=OWNER, field="f")


def test_an_unknown_key_id_is_named_and_the_value_is_not() -> None:
    old = SecretBox(_ring("k0"))
    sealed = old.seal(SECRET, owner=OWNER, field="f")
    with pytest.raises(UnknownKeyError) as caught:
        SecretBox(_ring("k1")).open(sealed, owner=OWNER, field="f")
    assert caught.value.key_id == "k0"
    assert "f: sealed under key id 'k0'" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_rotation_order_first_key_seals_every_key_opens() -> None:
    k1 = ("k1", os.urandom(32))
    k2 = ("k2", os.urandom(32))
    before = SecretBox(KeyRing.of([k1]))
    sealed_old = before.seal(SECRET, owner=OWNER, field="f")
    # Step 1: the new key is added in front; old values still open, new ones use k2.
    during = SecretBox(KeyRing.of([k2, k1]))
    assert during.open(sealed_old, owner=OWNER, field="f") == SECRET
    assert not during.is_current(sealed_old)
    resealed = during.seal(during.open(sealed_old, owner=OWNER, field="f"), owner=OWNER, field="f")
    assert resealed["kid"] == "k2"
    assert during.is_current(resealed)
    # Step 2: after re-sealing, k1 is dropped: what was re-sealed opens, what wasn't doesn't.
    after = SecretBox(KeyRing.of([k2]))
    assert after.open(resealed, owner=OWNER, field="f") == SECRET
    with pytest.raises(UnknownKeyError):
        after.open(sealed_old, owner=OWNER, field="f")


def test_is_sealed_tells_stored_plaintext_from_sealed_values(box: SecretBox) -> None:
    assert not is_sealed("https://hooks.slack.com/services/T/B/X")
    assert not is_sealed(None)
    assert not is_sealed({"url": "x"})
    assert is_sealed(box.seal("x", owner=OWNER, field="f"))
