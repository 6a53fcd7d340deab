"""Header names and the conversions between Kafka's list form and a dict."""

from __future__ import annotations

from integr8scode_events import headers as h


def test_to_dict_decodes_and_lets_the_last_value_win() -> None:
    raw: list[tuple[str, bytes | None]] = [
        ("event_type", b"execution.requested"),
        ("traceparent", b"00-aaaa-bbbb-01"),
        ("traceparent", b"00-cccc-dddd-01"),
        ("empty", None),
        ("bad", b"caf\xff"),
    ]
    assert h.to_dict(raw) == {
        "event_type": "execution.requested",
        "traceparent": "00-cccc-dddd-01",
        "empty": "",
        "bad": "caf\ufffd",
    }


def test_to_dict_of_nothing_is_empty() -> None:
    assert h.to_dict(None) == {}
    assert h.to_dict([]) == {}


def test_to_kafka_round_trips_through_to_dict() -> None:
    headers = {"correlation_id": "corr-1", "service": "api", "x-error-message": "naïve ✓"}
    kafka = h.to_kafka(headers)
    assert kafka == [
        ("correlation_id", b"corr-1"),
        ("service", b"api"),
        ("x-error-message", "naïve ✓".encode()),
    ]
    assert h.to_dict(kafka) == headers


def test_header_names_match_the_design() -> None:
    assert (h.EVENT_TYPE, h.CORRELATION_ID, h.SERVICE, h.TRACEPARENT, h.TRACESTATE) == (
        "event_type",
        "correlation_id",
        "service",
        "traceparent",
        "tracestate",
    )
    assert set(h.DEAD_LETTER_HEADERS) == {
        "x-original-topic",
        "x-original-partition",
        "x-original-offset",
        "x-consumer-group",
        "x-error-type",
        "x-error-message",
        "x-retry-count",
        "x-failed-at",
        # Ours beyond the design's list: the dead-lettering producer span, for dlq.consume's link.
        "x-dead-lettered-by",
    }
    assert (h.REPLAY_SESSION, h.REPLAYED_EVENT_ID) == ("x-replay-session", "x-replayed-event-id")
