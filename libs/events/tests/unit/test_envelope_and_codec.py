"""The envelope and its codec: round trips, partition keys, and every way decoding can fail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from integr8scode_events.codec import decode_event
from integr8scode_events.envelope import EventEnvelope
from integr8scode_events.errors import DecodeError, UnknownEventTypeError
from integr8scode_events.events import EVENT_TYPES, ExecutionCancelRequested, ExecutionRequested
from integr8scode_events.payloads import ExecutionCancelRequestedPayload
from integr8scode_events.topics import EXECUTION_EVENTS, EXECUTION_REQUESTS, NOTIFICATION_EVENTS


def _as_json(event: EventEnvelope) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(event.to_bytes())
    return data


def test_every_event_type_has_a_sample(all_events: list[EventEnvelope]) -> None:
    assert {type(e) for e in all_events} == set(EVENT_TYPES.values())
    assert set(EVENT_TYPES) == {e.event_type for e in all_events}


def test_round_trip_gives_the_same_class_and_value(any_event: EventEnvelope) -> None:
    decoded = decode_event(any_event.to_bytes())
    assert type(decoded) is type(any_event)
    assert decoded == any_event
    assert decoded.to_bytes() == any_event.to_bytes()


def test_key_is_the_execution_id(any_event: EventEnvelope) -> None:
    assert any_event.execution_id is not None
    assert any_event.key == any_event.execution_id.encode()


def test_no_execution_id_means_no_key(requested: ExecutionRequested) -> None:
    assert requested.model_copy(update={"execution_id": None}).key is None


def test_each_event_names_its_topic(all_events: list[EventEnvelope]) -> None:
    topics = {e.event_type: e.topic for e in all_events}
    assert topics["execution.requested"] is EXECUTION_REQUESTS
    assert topics["execution.cancel_requested"] is EXECUTION_REQUESTS
    for name in ("started", "completed", "failed", "timed_out", "cancelled"):
        assert topics[f"execution.{name}"] is EXECUTION_EVENTS
    assert topics["notification.sent"] is NOTIFICATION_EVENTS
    assert topics["notification.failed"] is NOTIFICATION_EVENTS


def test_envelope_defaults(requested: ExecutionRequested) -> None:
    fresh = ExecutionRequested.model_validate(
        {k: v for k, v in _as_json(requested).items() if k not in {"event_id", "occurred_at"}}
    )
    assert fresh.event_id != requested.event_id
    assert fresh.schema_version == 1
    assert fresh.event_type == "execution.requested"


@pytest.mark.parametrize("value", [b"", None])
def test_empty_value_is_a_decode_error(value: bytes | None) -> None:
    with pytest.raises(DecodeError, match="empty"):
        decode_event(value)


@pytest.mark.parametrize(
    "value",
    [b"not json", b"[1, 2, 3]", b"42", b"\xff\xfe", b"{}", b"[" * 100_000],
    ids=["text", "list", "number", "invalid-utf8", "empty-object", "deeply-nested"],
)
def test_garbage_is_a_decode_error_not_unknown_type(value: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_event(value)
    assert not isinstance(caught.value, UnknownEventTypeError)


def test_missing_payload_field_is_a_decode_error(requested: ExecutionRequested) -> None:
    data = _as_json(requested)
    del data["payload"]["language"]
    with pytest.raises(DecodeError, match=r"payload\.language") as caught:
        decode_event(json.dumps(data).encode())
    assert not isinstance(caught.value, UnknownEventTypeError)


@pytest.mark.parametrize("field", ["payload", "producer", "correlation_id"])
def test_missing_envelope_field_is_a_decode_error(
    requested: ExecutionRequested, field: str
) -> None:
    data = _as_json(requested)
    del data[field]
    with pytest.raises(DecodeError, match=field):
        decode_event(json.dumps(data).encode())


def test_payload_of_another_type_is_a_decode_error(requested: ExecutionRequested) -> None:
    data = _as_json(requested)
    data["event_type"] = "execution.started"
    with pytest.raises(DecodeError) as caught:
        decode_event(json.dumps(data).encode())
    assert not isinstance(caught.value, UnknownEventTypeError)


def test_unknown_event_type(requested: ExecutionRequested) -> None:
    data = _as_json(requested)
    data["event_type"] = "execution.teleported"
    with pytest.raises(UnknownEventTypeError, match=r"execution\.teleported"):
        decode_event(json.dumps(data).encode())


def test_missing_event_type_is_a_plain_decode_error(requested: ExecutionRequested) -> None:
    data = _as_json(requested)
    del data["event_type"]
    with pytest.raises(DecodeError) as caught:
        decode_event(json.dumps(data).encode())
    assert not isinstance(caught.value, UnknownEventTypeError)


@pytest.mark.parametrize("where", ["envelope", "payload", "producer"])
def test_extra_fields_are_rejected_on_decode(requested: ExecutionRequested, where: str) -> None:
    data = _as_json(requested)
    target = data if where == "envelope" else data[where]
    target["surprise"] = 1
    with pytest.raises(DecodeError, match="surprise"):
        decode_event(json.dumps(data).encode())


def test_extra_fields_are_rejected_on_construction(requested: ExecutionRequested) -> None:
    with pytest.raises(ValidationError, match="surprise"):
        ExecutionRequested.model_validate({**_as_json(requested), "surprise": 1})
    with pytest.raises(ValidationError, match="surprise"):
        ExecutionCancelRequestedPayload.model_validate({"requested_by": "u", "surprise": 1})


def test_events_are_frozen(requested: ExecutionRequested) -> None:
    with pytest.raises(ValidationError):
        requested.execution_id = "other"  # type: ignore[misc]


def test_constructor_enforces_the_payload_type(requested: ExecutionRequested) -> None:
    with pytest.raises(ValidationError):
        ExecutionCancelRequested.model_validate(
            {**_as_json(requested), "event_type": "execution.cancel_requested"}
        )


def test_empty_correlation_id_is_rejected(requested: ExecutionRequested) -> None:
    with pytest.raises(ValidationError, match="correlation_id"):
        ExecutionRequested.model_validate({**_as_json(requested), "correlation_id": ""})


def test_occurred_at_defaults_to_aware_utc_now(requested: ExecutionRequested) -> None:
    assert requested.occurred_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - requested.occurred_at) < timedelta(minutes=1)
    decoded = decode_event(requested.to_bytes())
    assert decoded.occurred_at.utcoffset() == timedelta(0)
    assert decoded.occurred_at == requested.occurred_at


def test_occurred_at_with_an_offset_is_normalised_to_utc(requested: ExecutionRequested) -> None:
    data = _as_json(requested)
    data["occurred_at"] = "2025-06-01T12:00:00+02:00"
    decoded = decode_event(json.dumps(data).encode())
    assert decoded.occurred_at == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    assert decoded.occurred_at.utcoffset() == timedelta(0)


def test_naive_occurred_at_is_taken_as_utc(requested: ExecutionRequested) -> None:
    # A BSON date read back without tz_aware, or a producer that forgot the offset.
    data = _as_json(requested)
    data["occurred_at"] = "2025-06-01T12:00:00"
    decoded = decode_event(json.dumps(data).encode())
    assert decoded.occurred_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    naive = datetime(2025, 6, 1, 12, 0)  # noqa: DTZ001 - the point of the test
    built = ExecutionRequested.model_validate({**requested.model_dump(), "occurred_at": naive})
    assert built.occurred_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_occurred_at_is_serialised_in_utc(requested: ExecutionRequested) -> None:
    plus_three = datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    event = ExecutionRequested.model_validate({**requested.model_dump(), "occurred_at": plus_three})
    assert _as_json(event)["occurred_at"] == "2025-06-01T09:00:00Z"
