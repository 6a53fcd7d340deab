"""Settings of event-replay: the lib fragments plus what is its own. Env prefix ``REPLAY_``."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import uuid

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from integr8scode_auth import ACCOUNT_CACHE_S, AccountCacheSeconds
from integr8scode_events.kafka import KafkaSettings
from integr8scode_mongo import MongoSettings
from integr8scode_telemetry import HeapSettings, TelemetrySettings

log = logging.getLogger(__name__)

# Where a missing token secret is tolerated (with a warning); anywhere else the start fails.
LOCAL_ENVIRONMENTS = frozenset({"local", "test", "ci"})
JWT_SECRET_MIN = 32  # HS256 wants a key at least as long as its hash


class InsecureConfigError(RuntimeError):
    """A setting left unset where it must be set (outside a local environment)."""


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ReplaySettings(BaseSettings):
    """Replay sessions: limits, pacing, concurrency, leases. Env prefix ``REPLAY_``."""

    model_config = SettingsConfigDict(env_prefix="REPLAY_", extra="ignore")

    max_concurrent_sessions: int = Field(
        default=4, ge=1, description="Sessions running (or paused) at once in one instance."
    )
    default_max_events: int = Field(
        default=10_000, ge=1, description="Safety cap of a session that does not name one."
    )
    max_events_limit: int = Field(
        default=100_000, ge=1, description="Highest max_events a session may ask for."
    )
    batch_size: int = Field(
        default=500,
        ge=1,
        le=5_000,
        description="Events read per batch (one query each: on FerretDB a page costs a scan).",
    )
    publish_window: int = Field(
        default=64,
        ge=1,
        le=1_000,
        description="At speed max, events awaiting their acknowledgement at once (each handed "
        "to the producer after the one before it, so partitions keep the order); 1: one at a "
        "time. Paced sessions always go one at a time.",
    )
    max_wait_s: float = Field(
        default=30.0, gt=0, description="Cap on any single wait between two paced events."
    )
    max_speed_factor: float = Field(
        default=1_000.0, gt=0, description="Slowest pace a session may ask for."
    )
    preview_size: int = Field(default=20, ge=1, le=1_000, description="Events in a dry run.")
    dry_run_budget_s: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="Time a dry run's count and preview get; past it the count is a lower bound.",
    )
    publish_attempts: int = Field(default=3, ge=1, description="Tries per event before failed.")
    max_consecutive_failures: int = Field(
        default=3, ge=1, description="Failed events in a row that fail the session."
    )
    progress_interval_s: float = Field(
        default=1.0, gt=0, description="Progress is persisted at least this often."
    )
    control_poll_s: float = Field(
        default=0.25, gt=0, description="How often a session reads pause/resume/cancel requests."
    )
    control_ack_timeout_s: float = Field(
        default=5.0, ge=0, description="How long the admin API waits for a request to apply."
    )
    lease_s: float = Field(
        default=15.0, gt=1, description="Owner lease of a running session; renewed every third."
    )
    recovery_interval_s: float = Field(
        default=5.0, gt=0, description="How often orphaned sessions are looked for."
    )
    stop_grace_s: float = Field(default=10.0, ge=0, description="Time sessions get at shutdown.")

    @model_validator(mode="after")
    def _default_within_limit(self) -> ReplaySettings:
        if self.default_max_events > self.max_events_limit:
            raise ValueError("REPLAY_DEFAULT_MAX_EVENTS must not exceed REPLAY_MAX_EVENTS_LIMIT")
        return self


class ArchiverSettings(BaseSettings):
    """The archiver's consumer group. Env prefix ``REPLAY_ARCHIVER_``."""

    model_config = SettingsConfigDict(env_prefix="REPLAY_ARCHIVER_", extra="ignore")

    group: str = Field(default="event-replay-archiver", description="Consumer group id.")
    max_batch: int = Field(default=500, ge=1, description="Messages per fetched batch.")
    fetch_min_bytes: int = Field(
        default=65_536,
        ge=1,
        description="The broker holds a fetch until this much is there or fetch_max_wait_ms "
        "passed: fewer, bigger batches (one insert each) instead of one per event.",
    )
    fetch_max_wait_ms: int = Field(
        default=250,
        ge=0,
        le=5_000,
        description="The longest an event waits in Kafka for its batch to fill before it is "
        "archived.",
    )


class Settings(BaseSettings):
    """Everything the service reads from its environment, read once in ``__main__``."""

    model_config = SettingsConfigDict(env_prefix="REPLAY_", extra="ignore", populate_by_name=True)

    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8003, ge=0, le=65535)
    log_level: str = Field(default="INFO")
    health_timeout_s: float = Field(default=2.0, gt=0, description="Per-probe readiness timeout.")
    instance_id: str = Field(default_factory=_instance_id, description="Owner id in leases.")
    jwt_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REPLAY_JWT_SECRET", "API_JWT_SECRET", "jwt_secret"),
        description="HS256 key of the api's tokens (REPLAY_JWT_SECRET, else API_JWT_SECRET).",
    )
    token_leeway_s: float = Field(default=5.0, ge=0, description="Clock skew tolerated on exp.")
    account_cache_s: AccountCacheSeconds = ACCOUNT_CACHE_S

    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    archiver: ArchiverSettings = Field(default_factory=ArchiverSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    heap: HeapSettings = Field(default_factory=HeapSettings)

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < JWT_SECRET_MIN:
            raise ValueError(f"the JWT secret must be at least {JWT_SECRET_MIN} characters")
        return value

    @property
    def environment(self) -> str:
        return self.telemetry.environment

    def resolve_jwt_secret(self) -> str:
        """The configured secret; in a local environment without one, a random one (no token
        then verifies: the admin API answers 401 until the secret is set)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.environment not in LOCAL_ENVIRONMENTS:
            raise InsecureConfigError(
                f"REPLAY_JWT_SECRET or API_JWT_SECRET must be set in environment "
                f"'{self.environment}'"
            )
        log.warning(
            "neither REPLAY_JWT_SECRET nor API_JWT_SECRET is set: the admin API accepts no token"
        )
        return secrets.token_urlsafe(48)
