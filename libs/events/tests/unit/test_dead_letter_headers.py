"""The headers a dead letter carries."""

from __future__ import annotations

from types import SimpleNamespace

from integr8scode_events import headers as h
from integr8scode_events.kafka.dead_letters import failure_headers


def test_a_failed_retry_is_addressed_to_the_dlq_and_keeps_its_record_id() -> None:
    record = SimpleNamespace(topic="execution_events", partition=2, offset=41)
    received = {
        h.TRACEPARENT: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        h.EVENT_TYPE: "execution.completed",
        h.RETRY_GROUP: "notifier",
        h.DEAD_LETTER_ID: "dl-1",
        h.RETRY_COUNT: "2",
        h.ERROR_MESSAGE: "the previous failure",
    }
    failure = failure_headers(record, received, "notifier", ValueError("receiver down"))
    assert h.RETRY_GROUP not in failure
    assert failure[h.DEAD_LETTER_ID] == "dl-1"
    assert failure[h.TRACEPARENT] == received[h.TRACEPARENT]
    assert failure[h.RETRY_COUNT] == "2"
    assert failure[h.ERROR_MESSAGE] == "receiver down"
    assert failure[h.ERROR_TYPE] == "builtins.ValueError"
    assert (failure[h.ORIGINAL_TOPIC], failure[h.ORIGINAL_PARTITION]) == ("execution_events", "2")
    assert (failure[h.ORIGINAL_OFFSET], failure[h.CONSUMER_GROUP]) == ("41", "notifier")
