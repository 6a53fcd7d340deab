"""Settings of notifier: the lib fragments plus what is its own. Env prefix ``NOTIFIER_``."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from integr8scode_events.kafka import KafkaSettings
from integr8scode_mongo import MongoSettings
from integr8scode_secrets import SecretsSettings
from integr8scode_telemetry import HeapSettings, TelemetrySettings


class Settings(BaseSettings):
    """Everything the service reads from its environment, read once in ``__main__``."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8004, ge=0, le=65535)
    log_level: str = Field(default="INFO")
    health_timeout_s: float = Field(default=2.0, gt=0, description="Per-probe readiness timeout.")

    consumer_group: str = Field(default="notifier")
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where clients reach the API: notifications link to "
        "{public_base_url}/api/v1/executions/{id}.",
    )
    http_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Per attempt: connect, send and answer."
    )
    delivery_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Attempts per channel before the message is "
        "dead-lettered (5xx, 429, timeouts, connection errors).",
    )
    backoff_initial_s: float = Field(default=0.5, ge=0, description="Wait before attempt 2.")
    backoff_max_s: float = Field(default=10.0, ge=0, description="Longest wait between attempts.")
    resolve_timeout_s: float = Field(default=5.0, gt=0, description="DNS lookup of a target.")
    allow_loopback_targets: bool = Field(
        default=False, description="Allow targets on the loopback (local development only)."
    )
    allow_private_targets: bool = Field(
        default=False,
        description="Allow targets in private ranges (RFC 1918, unique-local, shared space).",
    )
    propagate_trace_context: bool = Field(
        default=False,
        description="Send traceparent/tracestate/baggage with webhook and Slack requests "
        "(receivers you trust and trace yourself). Off: third parties never see the "
        "platform's trace ids; the client spans are recorded either way.",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    heap: HeapSettings = Field(default_factory=HeapSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)

    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("NOTIFIER_PUBLIC_BASE_URL must start with http:// or https://")
        return value.rstrip("/")
