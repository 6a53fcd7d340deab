"""The key ring's settings fragment, shared by every service that seals or opens credentials
(the api writes them, the notifier reads them): one variable, one meaning."""

from __future__ import annotations

import hashlib
import logging

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from integr8scode_secrets.errors import KeyRingError
from integr8scode_secrets.keyring import KeyRing

log = logging.getLogger(__name__)

# Where a missing key ring is tolerated (with a warning); anywhere else it stops the start.
LOCAL_ENVIRONMENTS = frozenset({"local", "test", "ci"})
LOCAL_KEY_ID = "local-insecure"
# A fixed, public key so every local process agrees without configuration. Not a secret.
_LOCAL_KEY = hashlib.sha256(b"integr8scode local-only secrets key; never use elsewhere").digest()


class SecretsSettings(BaseSettings):
    """The key ring that seals stored credentials. Env prefix ``INTEGR8SCODE_SECRETS_``."""

    # hide_input_in_errors: a validation error must not echo the key ring it refused.
    model_config = SettingsConfigDict(
        env_prefix="INTEGR8SCODE_SECRETS_", extra="ignore", hide_input_in_errors=True
    )

    keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated id:base64-key pairs (32-byte keys); the first seals, all "
        "open. Unset: a fixed, public key (local environments only).",
    )

    @field_validator("keys")
    @classmethod
    def _parses(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked as the settings are read, so a short or malformed key stops the start with
        # the variable's name, whatever the environment. The message never holds a key.
        if value is None or not value.get_secret_value().strip():
            return None
        try:
            KeyRing.parse(value.get_secret_value())
        except KeyRingError as exc:
            raise ValueError(f"INTEGR8SCODE_SECRETS_KEYS: {exc}") from None
        return value

    def key_ring(self, environment: str) -> KeyRing:
        """The configured ring; in a local environment without one, the public local key (with
        a warning); anywhere else ``KeyRingError``."""
        if self.keys is not None:
            return KeyRing.parse(self.keys.get_secret_value())
        if environment not in LOCAL_ENVIRONMENTS:
            raise KeyRingError(
                f"INTEGR8SCODE_SECRETS_KEYS must be set in environment {environment!r} "
                "(id:base64-key, a 32-byte key: openssl rand -base64 32)"
            )
        log.warning(
            "INTEGR8SCODE_SECRETS_KEYS is not set: stored credentials are sealed with the "
            "public local key %r; set a key ring anywhere but on this machine",
            LOCAL_KEY_ID,
        )
        return KeyRing.of([(LOCAL_KEY_ID, _LOCAL_KEY)])
