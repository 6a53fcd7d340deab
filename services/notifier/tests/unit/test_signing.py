"""Webhook signatures: what the sender puts in the headers and how a receiver checks it."""

from __future__ import annotations

import hashlib
import hmac

from integr8scode_notifier.domain.signing import signature, verify

SECRET = "a-webhook-secret-of-some-length"
BODY = b'{"event_type":"execution.completed"}'
NOW = 1_700_000_000


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == f"sha256={expected}"


def test_a_receiver_accepts_a_fresh_untouched_request() -> None:
    assert verify(SECRET, str(NOW), BODY, signature(SECRET, NOW, BODY), now=NOW + 10)


def test_a_receiver_rejects_a_changed_body_secret_or_timestamp() -> None:
    good = signature(SECRET, NOW, BODY)
    assert not verify(SECRET, str(NOW), BODY + b" ", good, now=NOW)
    assert not verify(SECRET + "x", str(NOW), BODY, good, now=NOW)
    assert not verify(SECRET, str(NOW + 1), BODY, good, now=NOW)


def test_a_receiver_rejects_stale_or_future_timestamps() -> None:
    good = signature(SECRET, NOW, BODY)
    assert verify(SECRET, str(NOW), BODY, good, now=NOW + 300)
    assert not verify(SECRET, str(NOW), BODY, good, now=NOW + 301)
    assert not verify(SECRET, str(NOW), BODY, good, now=NOW - 301)


def test_a_malformed_timestamp_or_signature_is_rejected() -> None:
    assert not verify(SECRET, "yesterday", BODY, signature(SECRET, NOW, BODY), now=NOW)
    assert not verify(SECRET, str(NOW), BODY, "md5=abc", now=NOW)
