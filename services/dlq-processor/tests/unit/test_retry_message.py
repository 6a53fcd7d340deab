"""The message a retry re-publishes: original key, value and headers minus the failure headers,
plus the retry's own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from integr8scode_dlq_processor.domain import transitions as tr
from integr8scode_dlq_processor.domain.policies import RetryPolicy
from integr8scode_dlq_processor.domain.reports import FailureReport
from integr8scode_dlq_processor.domain.retry_message import build_retry
from integr8scode_events import headers as h

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_retry_keeps_the_original_and_names_the_group_and_record(
    make_report: Callable[..., FailureReport], make_policy: Callable[..., RetryPolicy]
) -> None:
    report = make_report(
        headers={
            h.RETRY_GROUP: "an-older-group",
            h.DEAD_LETTER_ID: "cd" * 16,
            h.REPLAY_SESSION: "session-1",
        }
    )
    record = tr.open_record(report, make_policy(), T0, lambda low, high: high)
    message = build_retry(record, 2)

    assert message.topic == "execution_events"
    assert (message.key, message.value) == (report.key, report.value)
    assert message.headers == {
        "event_type": "execution.requested",
        "correlation_id": "corr-1",
        "traceparent": report.trace.traceparent,  # replaced by the retry span's when published
        h.REPLAY_SESSION: "session-1",
        h.RETRY_COUNT: "2",
        h.DEAD_LETTER_ID: record.id,
        h.RETRY_GROUP: "notifier",
    }
    assert not set(h.DEAD_LETTER_HEADERS) - {h.RETRY_COUNT} & set(message.headers)
    assert message.trace == report.trace
    assert message.trace.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert (message.event_id, message.execution_id) == ("e-1", "x-1")
