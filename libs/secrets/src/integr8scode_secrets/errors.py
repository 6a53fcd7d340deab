"""The lib's exceptions. None of them ever carries a key or a plaintext."""

from __future__ import annotations


class SecretsError(Exception):
    """Base of the lib's errors."""


class KeyRingError(SecretsError, ValueError):
    """The configured key ring is unusable (missing outside a local environment, a key that is
    not 32 bytes of base64, a duplicate or malformed key id). Raised at start-up."""


class UnsealError(SecretsError):
    """A stored value can't be opened. The message says why, never what the value holds."""


class UnknownKeyError(UnsealError):
    """The value was sealed under a key id that is not in the ring (dropped too early, or the
    service's ring lacks the newest key)."""

    def __init__(self, key_id: str, field: str = "") -> None:
        where = f"{field}: " if field else ""
        super().__init__(f"{where}sealed under key id {key_id!r}, which is not in the key ring")
        self.key_id = key_id


class TamperedError(UnsealError):
    """Authentication failed: the ciphertext was altered, belongs to another owner or field, or
    the key under its id is not the one that sealed it; or the stored shape is malformed."""
