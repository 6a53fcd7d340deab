"""Settings of dlq-processor: the lib fragments plus what is its own. Env prefix ``DLQ_``.

Retry policies are validated here, when the settings are read: a bad ``DLQ_RETRY_POLICIES`` or
``DLQ_DEFAULT_*`` stops the start with a message naming the field.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import uuid
from typing import Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from integr8scode_auth import ACCOUNT_CACHE_S, AccountCacheSeconds
from integr8scode_dlq_processor.domain.policies import (
    Action,
    Jitter,
    PolicyBook,
    PolicyRule,
    RetryPolicy,
    describe,
)
from integr8scode_events.kafka import KafkaSettings
from integr8scode_mongo import MongoSettings
from integr8scode_telemetry import HeapSettings, TelemetrySettings

log = logging.getLogger(__name__)

# Where an unset JWT secret is tolerated (with a warning); anywhere else the start is refused.
LOCAL_ENVIRONMENTS = frozenset({"local", "test", "ci"})
JWT_SECRET_MIN = 32


class InsecureConfigError(RuntimeError):
    """A setting that must be set outside a local environment is not."""


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class RetryRuleSpec(BaseModel):
    """One entry of ``DLQ_RETRY_POLICIES``; fields left out come from the ``DLQ_DEFAULT_*``."""

    model_config = ConfigDict(extra="forbid")

    topic: str | None = Field(default=None, min_length=1)
    event_type: str | None = Field(default=None, min_length=1)
    action: Action | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    initial_backoff_s: float | None = Field(default=None, gt=0)
    max_backoff_s: float | None = Field(default=None, gt=0)
    multiplier: float | None = Field(default=None, ge=1)
    jitter: Jitter | None = None

    @model_validator(mode="after")
    def _selects_something(self) -> Self:
        if self.topic is None and self.event_type is None:
            raise ValueError(
                "a retry policy needs 'topic', 'event_type' or both "
                "(the default policy is set with DLQ_DEFAULT_*)"
            )
        return self


class Settings(BaseSettings):
    """Everything the service reads from its environment, read once in ``__main__``."""

    model_config = SettingsConfigDict(env_prefix="DLQ_", extra="ignore", populate_by_name=True)

    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8002, ge=0, le=65535)
    log_level: str = Field(default="INFO")
    health_timeout_s: float = Field(default=2.0, gt=0, description="Per-probe readiness timeout.")

    instance_id: str = Field(default_factory=_instance_id, description="Owner id in claims.")
    consumer_group: str = Field(default="dlq-processor", min_length=1)

    default_action: Action = Field(default=Action.RETRY)
    default_max_attempts: int = Field(default=5, ge=1, le=1000)
    default_initial_backoff_s: float = Field(default=30.0, gt=0)
    default_max_backoff_s: float = Field(default=3600.0, gt=0)
    default_multiplier: float = Field(default=2.0, ge=1)
    default_jitter: Jitter = Field(default=Jitter.FULL)
    retry_policies: list[RetryRuleSpec] = Field(
        default_factory=list,
        description="JSON list of per-topic / per-event-type policies (most specific wins).",
    )

    poll_interval_s: float = Field(default=1.0, gt=0, le=60, description="Scheduler poll.")
    scheduler_batch: int = Field(default=100, ge=1, le=10_000, description="Due records a tick.")
    scheduler_concurrency: int = Field(default=8, ge=1, le=256, description="Attempts at once.")
    claim_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="After this, a claimed attempt that was not confirmed "
        "is taken over by another instance (it must outlast a publish).",
    )
    publish_retry_s: float = Field(
        default=5.0, gt=0, description="When Kafka did not take a retry: try it again after."
    )

    jwt_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DLQ_JWT_SECRET", "API_JWT_SECRET", "jwt_secret"),
        description="HS256 key of the api's access tokens (falls back to API_JWT_SECRET).",
    )
    jwt_leeway_s: float = Field(default=5.0, ge=0, le=300)
    account_cache_s: AccountCacheSeconds = ACCOUNT_CACHE_S

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

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.default_max_backoff_s < self.default_initial_backoff_s:
            raise ValueError(
                "DLQ_DEFAULT_MAX_BACKOFF_S must not be below DLQ_DEFAULT_INITIAL_BACKOFF_S"
            )
        publish_timeout_s = self.kafka.request_timeout_ms / 1000
        if self.claim_lease_s < 2 * publish_timeout_s:
            raise ValueError(
                f"DLQ_CLAIM_LEASE_S ({self.claim_lease_s:g}) must be at least twice the Kafka "
                f"publish timeout ({publish_timeout_s:g}s), or a slow publish would be taken "
                "over and sent twice"
            )
        self.policy_book()  # raises on bad rules
        return self

    @property
    def environment(self) -> str:
        return self.telemetry.environment

    def default_policy(self) -> RetryPolicy:
        return RetryPolicy(
            rule="default",
            action=self.default_action,
            max_attempts=self.default_max_attempts,
            initial_backoff_s=self.default_initial_backoff_s,
            max_backoff_s=self.default_max_backoff_s,
            multiplier=self.default_multiplier,
            jitter=self.default_jitter,
        )

    def policy_book(self) -> PolicyBook:
        """The default policy and the rules, each rule completed from the default."""
        default = self.default_policy()
        rules = []
        for index, spec in enumerate(self.retry_policies):
            given = spec.model_dump(exclude_none=True, exclude={"topic", "event_type"})
            policy = default.model_copy(
                update={**given, "rule": describe(spec.topic, spec.event_type)}
            )
            if policy.max_backoff_s < policy.initial_backoff_s:
                raise ValueError(
                    f"DLQ_RETRY_POLICIES[{index}] ({policy.rule}): max_backoff_s "
                    f"({policy.max_backoff_s:g}) is below initial_backoff_s "
                    f"({policy.initial_backoff_s:g})"
                )
            rules.append(PolicyRule(policy=policy, topic=spec.topic, event_type=spec.event_type))
        try:
            return PolicyBook(default, rules)
        except ValueError as exc:
            raise ValueError(f"DLQ_RETRY_POLICIES: {exc}") from exc

    def resolve_jwt_secret(self) -> str:
        """The configured secret; in a local environment without one, a random one (the admin
        API then accepts no token, since none is signed with it)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.environment not in LOCAL_ENVIRONMENTS:
            raise InsecureConfigError(
                f"DLQ_JWT_SECRET (or API_JWT_SECRET) must be set in environment "
                f"'{self.environment}': the admin API verifies the api's tokens with it"
            )
        log.warning(
            "neither DLQ_JWT_SECRET nor API_JWT_SECRET is set: the admin API will refuse every "
            "token (set the api's secret to use it)"
        )
        return secrets.token_urlsafe(48)
