"""Settings of notifier: the lib fragments plus what is its own. Env prefix ``NOTIFIER_``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from integr8scode_events import KafkaSettings, MongoSettings
from integr8scode_telemetry import TelemetrySettings


class Settings(BaseSettings):
    """Everything the service reads from its environment, read once in ``__main__``."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8004, ge=0, le=65535)
    log_level: str = Field(default="INFO")
    health_timeout_s: float = Field(default=2.0, gt=0, description="Per-probe readiness timeout.")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
