"""The key ring: AES-256 keys by id. The first key seals; every key opens.

Text form (``INTEGR8SCODE_SECRETS_KEYS``): comma-separated ``id:key`` pairs, each key 32 random
bytes in base64 (standard or URL-safe alphabet, padding optional), e.g.
``2026-07:q3V…=,2026-01:Zm9…=``. Ids are 1 to 32 of ``A-Z a-z 0-9 _ -``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from integr8scode_secrets.errors import KeyRingError

KEY_BYTES = 32  # AES-256
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def decode_key(text: str) -> bytes:
    """32 bytes from their base64 form; ``KeyRingError`` (without the value) otherwise."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError("a key is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyRingError(
            f"a key decodes to {len(raw)} bytes; AES-256 needs exactly {KEY_BYTES} "
            "(generate one with: openssl rand -base64 32)"
        )
    return raw


@dataclass(frozen=True)
class KeyRing:
    """Keys by id, in order; ``current`` (the first) seals. Its ``repr`` shows ids only."""

    ids: tuple[str, ...]
    _keys: Mapping[str, bytes] = field(repr=False, compare=False)

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, bytes]]) -> KeyRing:
        """A ring from ``(id, 32-byte key)`` pairs, the sealing key first."""
        keys: dict[str, bytes] = {}
        for key_id, key in pairs:
            if not _KEY_ID.match(key_id):
                raise KeyRingError(
                    f"key id {key_id!r} is not 1 to 32 of A-Z, a-z, 0-9, '_' and '-'"
                )
            if key_id in keys:
                raise KeyRingError(f"key id {key_id!r} appears twice")
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"key {key_id!r} is {len(key)} bytes, not {KEY_BYTES}")
            keys[key_id] = bytes(key)
        if not keys:
            raise KeyRingError("the key ring is empty")
        return cls(tuple(keys), MappingProxyType(keys))

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """A ring from its text form (see the module docstring)."""
        pairs: list[tuple[str, bytes]] = []
        for entry in text.split(","):
            if not entry.strip():
                continue
            key_id, sep, key = entry.strip().partition(":")
            if not sep:
                raise KeyRingError("each entry must be id:base64-key (comma-separated)")
            try:
                pairs.append((key_id.strip(), decode_key(key)))
            except KeyRingError as exc:
                raise KeyRingError(f"key {key_id.strip()!r}: {exc}") from None
        return cls.of(pairs)

    @property
    def current(self) -> str:
        """The id of the key that seals."""
        return self.ids[0]

    def key(self, key_id: str) -> bytes | None:
        return self._keys.get(key_id)
