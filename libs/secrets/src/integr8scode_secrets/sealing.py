"""Sealing credentials for storage: AES-256-GCM under the ring's current key, bound to who owns
the value and which field holds it.

Stored form, version 1 (a document, so it can't be mistaken for a plaintext string)::

    {"v": 1, "kid": "<key id>", "ct": "<base64url: 12-byte nonce | ciphertext | 16-byte tag>"}

The associated data is ``["integr8scode-secret", 1, kid, owner, field]`` as compact JSON: a
value copied to another user or another field, or relabelled with another key id, fails
authentication. Nonces are random (96 bits); a key may seal about 2**32 values before NIST's
bound for random nonces, far beyond one settings document per user.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from integr8scode_secrets.errors import TamperedError, UnknownKeyError
from integr8scode_secrets.keyring import KeyRing

FORMAT_VERSION = 1
_NONCE_BYTES = 12
_TAG_BYTES = 16
_FIELDS = frozenset({"v", "kid", "ct"})


def is_sealed(value: object) -> bool:
    """Whether ``value`` has the stored form of a sealed value (any version, any key)."""
    return isinstance(value, Mapping) and set(value) >= _FIELDS


def _associated_data(version: int, key_id: str, owner: str, field: str) -> bytes:
    return json.dumps(
        ["integr8scode-secret", version, key_id, owner, field], separators=(",", ":")
    ).encode()


class SecretBox:
    """Seals and opens values with one key ring. Thread-safe; holds no plaintext."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._ciphers: dict[str, AESGCM] = {}

    @property
    def ring(self) -> KeyRing:
        return self._ring

    def _cipher(self, key_id: str, field: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            key = self._ring.key(key_id)
            if key is None:
                raise UnknownKeyError(key_id, field)
            cipher = self._ciphers[key_id] = AESGCM(key)
        return cipher

    def seal(self, plaintext: str, *, owner: str, field: str) -> dict[str, Any]:
        """``plaintext`` sealed under the current key for ``owner``'s ``field``."""
        key_id = self._ring.current
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._cipher(key_id, field).encrypt(
            nonce,
            plaintext.encode("utf-8"),
            _associated_data(FORMAT_VERSION, key_id, owner, field),
        )
        token = base64.urlsafe_b64encode(nonce + ciphertext).rstrip(b"=").decode("ascii")
        return {"v": FORMAT_VERSION, "kid": key_id, "ct": token}

    def open(self, sealed: object, *, owner: str, field: str) -> str:
        """The plaintext of ``sealed``, if it was sealed for ``owner``'s ``field`` under a key
        of the ring; ``UnknownKeyError`` or ``TamperedError`` otherwise."""
        if not is_sealed(sealed):
            raise TamperedError(f"{field}: not a sealed value")
        assert isinstance(sealed, Mapping)  # noqa: S101 - narrowed by is_sealed
        version, key_id, token = sealed["v"], sealed["kid"], sealed["ct"]
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise TamperedError(f"{field}: unsupported sealed format version {version!r}")
        if not isinstance(key_id, str) or not isinstance(token, str):
            raise TamperedError(f"{field}: malformed sealed value")
        cipher = self._cipher(key_id, field)
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise TamperedError(f"{field}: malformed ciphertext") from None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise TamperedError(f"{field}: ciphertext too short")
        try:
            plaintext = cipher.decrypt(
                raw[:_NONCE_BYTES],
                raw[_NONCE_BYTES:],
                _associated_data(version, key_id, owner, field),
            )
        except InvalidTag:
            raise TamperedError(
                f"{field}: authentication failed (altered, sealed for another owner or field, "
                f"or key {key_id!r} is not the key that sealed it)"
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise TamperedError(f"{field}: plaintext is not UTF-8") from None

    def is_current(self, sealed: object) -> bool:
        """Whether ``sealed`` is in the current format under the current key (else a rotation
        re-seals it)."""
        return (
            is_sealed(sealed)
            and isinstance(sealed, Mapping)
            and sealed["v"] == FORMAT_VERSION
            and sealed["kid"] == self._ring.current
        )
