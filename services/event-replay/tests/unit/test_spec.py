"""Session specs: filters, target topic, speed and cap are validated with clear messages, and
the filters become the Mongo query the event store is read with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integr8scode_event_replay.adapters.mongo_events import events_query
from integr8scode_event_replay.domain.errors import InvalidRequestError
from integr8scode_event_replay.domain.sessions import Cursor
from integr8scode_event_replay.domain.spec import (
    ReplayFilters,
    SpecLimits,
    Target,
    build_spec,
    validate_topic_name,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
LIMITS = SpecLimits(default_max_events=50, max_events_limit=100, max_speed_factor=1000)


def spec(**overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "filters": ReplayFilters(execution_id="exec-1"),
        "target_topic": None,
        "speed_factor": None,
        "max_events": None,
        "dry_run": False,
        "reprocess": False,
        "limits": LIMITS,
        "now": NOW,
    }
    return build_spec(**{**fields, **overrides})


def test_a_valid_spec_gets_the_default_cap_and_to_defaults_to_now() -> None:
    built = spec(filters=ReplayFilters(event_types=("execution.completed",) * 2))
    assert built.max_events == 50
    assert built.filters.event_types == ("execution.completed",)  # duplicates dropped
    assert built.filters.occurred_to == NOW
    assert built.target.original
    assert built.speed.factor is None


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (ReplayFilters(), "at least one filter"),
        (ReplayFilters(event_types=("execution.exploded",)), "unknown event type"),
        (ReplayFilters(execution_id="  "), "execution_id must be"),
        (ReplayFilters(user_id="u" * 201), "user_id must be"),
        (
            ReplayFilters(occurred_from=NOW - HOUR, occurred_to=NOW - 2 * HOUR),
            "from must be before to",
        ),
        (
            ReplayFilters(occurred_from=NOW - HOUR, occurred_to=NOW - HOUR),
            "from must be before to",
        ),
        (ReplayFilters(occurred_from=NOW + timedelta(hours=1)), "from must be in the past"),
        (ReplayFilters(occurred_to=datetime(2026, 1, 1)), "needs a timezone"),  # noqa: DTZ001
    ],
)
def test_invalid_filters_are_refused_with_a_clear_message(
    filters: ReplayFilters, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        spec(filters=filters)


def test_the_unknown_type_message_lists_the_known_ones() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        spec(filters=ReplayFilters(event_types=("nope",)))
    assert "execution.requested" in caught.value.detail


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("has space", "not a legal Kafka topic"),
        ("", "not a legal Kafka topic"),
        ("x" * 250, "not a legal Kafka topic"),
        ("..", "not a legal Kafka topic"),
        ("tópico", "not a legal Kafka topic"),
        ("__consumer_offsets", "internal"),
        ("dead_letter_queue", "refused"),
        ("execution_events", "domain topic"),
    ],
)
def test_target_topics_are_refused_when_illegal_internal_or_reserved(
    name: str, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        validate_topic_name(name)


def test_a_named_target_topic_is_kept() -> None:
    assert spec(target_topic="replay.audit-1").target == Target("replay.audit-1")
    assert Target("replay.audit-1").topic_for("execution.requested") == "replay.audit-1"


def test_the_original_target_is_each_events_own_topic() -> None:
    original = Target()
    assert original.topic_for("execution.requested") == "execution_requests"
    assert original.topic_for("execution.completed") == "execution_events"
    assert original.topic_for("notification.sent") == "notification_events"
    assert original.topic_for("unknown.type") is None


@pytest.mark.parametrize("factor", [0.0, -1.0, 1000.5])
def test_speed_factors_out_of_range_are_refused(factor: float) -> None:
    with pytest.raises(InvalidRequestError, match="speed must be"):
        spec(speed_factor=factor)


def test_speed_factors_in_range_are_kept() -> None:
    assert spec(speed_factor=0.1).speed.factor == 0.1
    assert spec(speed_factor=1000).speed.label == "1000x"


@pytest.mark.parametrize("cap", [0, -3, 101])
def test_a_cap_outside_one_to_the_limit_is_refused(cap: int) -> None:
    with pytest.raises(InvalidRequestError, match="max_events must be between 1 and 100"):
        spec(max_events=cap)


def test_a_cap_up_to_the_limit_is_kept() -> None:
    assert spec(max_events=100).max_events == 100


def test_filters_become_a_simple_mongo_query() -> None:
    start, end = NOW - timedelta(days=1), NOW
    query = events_query(
        ReplayFilters(
            event_types=("execution.started", "execution.completed"),
            execution_id="exec-1",
            user_id="u-1",
            occurred_from=start,
            occurred_to=end,
        )
    )
    assert query == {
        "event_type": {"$in": ["execution.started", "execution.completed"]},
        "execution_id": "exec-1",
        "user_id": "u-1",
        "occurred_at": {"$gte": start, "$lt": end},
    }


def test_one_event_type_is_an_equality_and_absent_criteria_are_left_out() -> None:
    assert events_query(ReplayFilters(event_types=("execution.started",))) == {
        "event_type": "execution.started"
    }
    assert events_query(ReplayFilters(occurred_to=NOW)) == {"occurred_at": {"$lt": NOW}}


def test_a_cursor_continues_after_the_last_event_in_time_then_id_order() -> None:
    cursor = Cursor(NOW, "b-event")
    query = events_query(ReplayFilters(execution_id="exec-1"), after=cursor)
    assert query["$or"] == [
        {"occurred_at": {"$gt": NOW}},
        {"occurred_at": NOW, "event_id": {"$gt": "b-event"}},
    ]
    assert query["execution_id"] == "exec-1"
