"""The settings fragment every service composes to reach the MongoDB-wire server."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MongoSettings(BaseSettings):
    """How to reach the MongoDB-wire server. Env prefix ``MONGO_``."""

    model_config = SettingsConfigDict(env_prefix="MONGO_", extra="ignore")

    url: str = Field(default="mongodb://127.0.0.1:27017")
    database: str = Field(default="integr8scode")
    server_selection_timeout_ms: int = Field(default=5_000, gt=0)
