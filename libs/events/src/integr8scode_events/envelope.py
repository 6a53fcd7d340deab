"""The envelope every message carries (DESIGN.md §4), generic over its typed payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from integr8scode_events.topics import TopicSpec


class ProducerInfo(BaseModel):
    """Which service (and version) produced the event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    version: str


def _now() -> datetime:
    return datetime.now(UTC)


class EventEnvelope(BaseModel):
    """Fields common to every event. Concrete events subclass it, fixing ``event_type`` (a
    ``Literal``) and ``payload`` (their payload model), and name their ``topic``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: ClassVar[TopicSpec]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    schema_version: int = Field(default=1, ge=1)
    occurred_at: datetime = Field(default_factory=_now)
    producer: ProducerInfo
    correlation_id: str = Field(min_length=1, max_length=200)
    execution_id: str | None = None
    user_id: str | None = None
    payload: BaseModel

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        # Naive values (a BSON date read without tz_aware, a foreign producer) are UTC by
        # contract; without this they would crash comparisons with aware datetimes downstream.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def key(self) -> bytes | None:
        """Partition key: the execution id wherever there is one, so its events stay in order."""
        return self.execution_id.encode() if self.execution_id else None

    def to_bytes(self) -> bytes:
        """The message value: JSON."""
        return self.model_dump_json().encode()
