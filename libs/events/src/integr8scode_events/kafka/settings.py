"""The Kafka settings fragment; services compose it (the Mongo one is libs/mongo's)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """How to reach Kafka. Env prefix ``KAFKA_``."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(default="127.0.0.1:9092")
    client_id_prefix: str = Field(default="integr8scode")
    request_timeout_ms: int = Field(default=10_000, gt=0)
    commit_interval_ms: int = Field(
        default=1000,
        ge=0,
        le=60_000,
        description="Consumers commit handled offsets at most this often (0: after every "
        "batch); a crash redelivers at most this window to the idempotent handlers.",
    )
