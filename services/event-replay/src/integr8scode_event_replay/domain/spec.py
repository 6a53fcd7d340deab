"""What a replay session replays, where to and how fast: filters, target, speed, cap.

Built from the admin API's request and validated here, so every rule (known event types,
a legal and allowed target topic, a time range that is a range, a cap within the limit) has one
home and one message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from integr8scode_event_replay.domain.errors import InvalidRequestError
from integr8scode_events import DEAD_LETTER_QUEUE, EVENT_TYPES
from integr8scode_events.topics import DOMAIN_TOPICS

# Kafka's own rule for topic names (legal characters, at most 249 of them).
_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_ID_MAX = 200


@dataclass(frozen=True)
class ReplayFilters:
    """Which stored events match. Every given criterion must hold; ``occurred_from`` is
    inclusive, ``occurred_to`` exclusive (on ``occurred_at``)."""

    event_types: tuple[str, ...] = ()
    execution_id: str | None = None
    user_id: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.event_types
            or self.execution_id
            or self.user_id
            or self.occurred_from
            or self.occurred_to
        )


@dataclass(frozen=True)
class Target:
    """Where replayed events go: ``topic=None`` means each event's original topic."""

    topic: str | None = None

    @property
    def original(self) -> bool:
        return self.topic is None

    def topic_for(self, event_type: str) -> str | None:
        """The destination of an event of ``event_type``; None for a type this version does not
        know (it can't be replayed to its original topic)."""
        if self.topic is not None:
            return self.topic
        event_class = EVENT_TYPES.get(event_type)
        return event_class.topic.name if event_class is not None else None


@dataclass(frozen=True)
class Speed:
    """``factor=None``: as fast as the broker takes them. Otherwise each wait is the original
    spacing times ``factor`` (1.0 real time, 0.1 ten times faster, 2.0 twice as slow)."""

    factor: float | None = None

    @property
    def label(self) -> str:
        return "max" if self.factor is None else f"{self.factor:g}x"


@dataclass(frozen=True)
class SessionSpec:
    """Everything a session was created with (validated)."""

    filters: ReplayFilters
    target: Target = field(default_factory=Target)
    speed: Speed = field(default_factory=Speed)
    max_events: int = 1
    dry_run: bool = False
    reprocess: bool = False


@dataclass(frozen=True)
class SpecLimits:
    """The settings that bound a spec."""

    default_max_events: int
    max_events_limit: int
    max_speed_factor: float


def validate_topic_name(name: str) -> str:
    """A named target topic: legal for Kafka, not internal, not the dead-letter topic and not a
    domain topic (replaying into those is what the ``original`` target is for)."""
    if not _TOPIC_NAME.match(name) or name in {".", ".."}:
        raise InvalidRequestError(
            f"target topic {name!r} is not a legal Kafka topic name "
            "(1-249 of a-z, A-Z, 0-9, '.', '_', '-')"
        )
    if name.startswith("__"):
        raise InvalidRequestError(f"target topic {name!r} is internal to Kafka ('__' prefix)")
    if name == DEAD_LETTER_QUEUE.name:
        raise InvalidRequestError(f"replaying into {name!r} is refused")
    if name in {spec.name for spec in DOMAIN_TOPICS}:
        raise InvalidRequestError(
            f"target topic {name!r} is a domain topic: use the 'original' target to replay "
            "events into their own topics"
        )
    return name


def validate_filters(filters: ReplayFilters) -> ReplayFilters:
    """The filters, with duplicate event types dropped; ``InvalidRequestError`` when they
    name an unknown type, an empty id, or a time range that is not one."""
    if filters.empty:
        raise InvalidRequestError(
            "give at least one filter (event_types, execution_id, user_id, from, to): "
            "a replay of everything is not what anybody means"
        )
    unknown = sorted(set(filters.event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidRequestError(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(sorted(EVENT_TYPES))}"
        )
    for name, value in (("execution_id", filters.execution_id), ("user_id", filters.user_id)):
        if value is not None and not (0 < len(value.strip()) <= _ID_MAX):
            raise InvalidRequestError(f"{name} must be 1-{_ID_MAX} characters when given")
    for name, moment in (("from", filters.occurred_from), ("to", filters.occurred_to)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidRequestError(f"{name} needs a timezone (e.g. 2026-01-01T00:00:00Z)")
    if (
        filters.occurred_from is not None
        and filters.occurred_to is not None
        and filters.occurred_from >= filters.occurred_to
    ):
        raise InvalidRequestError("from must be before to")
    return ReplayFilters(
        event_types=tuple(dict.fromkeys(filters.event_types)),
        execution_id=filters.execution_id,
        user_id=filters.user_id,
        occurred_from=filters.occurred_from,
        occurred_to=filters.occurred_to,
    )


def build_spec(
    *,
    filters: ReplayFilters,
    target_topic: str | None,
    speed_factor: float | None,
    max_events: int | None,
    dry_run: bool,
    reprocess: bool,
    limits: SpecLimits,
    now: datetime,
) -> SessionSpec:
    """A validated spec. A missing ``to`` becomes ``now``: a session replays what had
    happened when it was created, so its match count and cap are fixed at creation."""
    if filters.occurred_to is None:
        if filters.occurred_from is not None and filters.occurred_from >= now:
            raise InvalidRequestError("from must be in the past (to defaults to now)")
        filters = ReplayFilters(
            event_types=filters.event_types,
            execution_id=filters.execution_id,
            user_id=filters.user_id,
            occurred_from=filters.occurred_from,
            occurred_to=now if not filters.empty else None,
        )
    filters = validate_filters(filters)
    if speed_factor is not None and not (0 < speed_factor <= limits.max_speed_factor):
        raise InvalidRequestError(
            f"speed must be 'max' or a factor in (0, {limits.max_speed_factor:g}]"
        )
    cap = limits.default_max_events if max_events is None else max_events
    if not (1 <= cap <= limits.max_events_limit):
        raise InvalidRequestError(f"max_events must be between 1 and {limits.max_events_limit}")
    return SessionSpec(
        filters=filters,
        target=Target(None if target_topic is None else validate_topic_name(target_topic)),
        speed=Speed(speed_factor),
        max_events=cap,
        dry_run=dry_run,
        reprocess=reprocess,
    )
