"""Credentials at rest: a key ring from the environment and values sealed with AES-256-GCM,
bound to their owner and field. Imported by the api (seals) and the notifier (opens)."""

from __future__ import annotations

from integr8scode_secrets.errors import (
    KeyRingError,
    SecretsError,
    TamperedError,
    UnknownKeyError,
    UnsealError,
)
from integr8scode_secrets.keyring import KEY_BYTES, KeyRing, decode_key
from integr8scode_secrets.sealing import FORMAT_VERSION, SecretBox, is_sealed
from integr8scode_secrets.settings import LOCAL_ENVIRONMENTS, LOCAL_KEY_ID, SecretsSettings

__all__ = [
    "FORMAT_VERSION",
    "KEY_BYTES",
    "LOCAL_ENVIRONMENTS",
    "LOCAL_KEY_ID",
    "KeyRing",
    "KeyRingError",
    "SecretBox",
    "SecretsError",
    "SecretsSettings",
    "TamperedError",
    "UnknownKeyError",
    "UnsealError",
    "decode_key",
    "is_sealed",
]
