"""Reading a dead letter: record identity, lenient header parsing, payload encodings, masking."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from integr8scode_dlq_processor.domain import transitions as tr
from integr8scode_dlq_processor.domain.payloads import (
    PayloadEncoding,
    mask_headers,
    mask_secrets,
    readable_key,
    readable_payload,
)
from integr8scode_dlq_processor.domain.policies import RetryPolicy
from integr8scode_dlq_processor.domain.reports import FailureReport, record_id
from integr8scode_events import StoredTraceContext

ReportFactory = Callable[..., FailureReport]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_same_failed_message_always_gets_the_same_id(make_report: ReportFactory) -> None:
    first, redelivered = make_report(offset=1), make_report(offset=2)
    assert first.record_id() == redelivered.record_id()
    assert len(first.record_id()) == 32
    assert first.record_id() == record_id("execution_events", 2, 17, "notifier")


@pytest.mark.parametrize(
    "header",
    [
        {"x-original-offset": "18"},
        {"x-original-partition": "3"},
        {"x-original-topic": "execution_requests"},
        {"x-consumer-group": "integr8scode-backend-status"},
    ],
)
def test_another_message_or_group_gets_another_id(
    make_report: ReportFactory, header: dict[str, str]
) -> None:
    assert make_report(headers=header).record_id() != make_report().record_id()


def test_a_retry_names_its_record(make_report: ReportFactory) -> None:
    carried = "ab" * 16
    retried = make_report(headers={"x-dead-letter-id": carried, "x-original-offset": "99"})
    assert retried.record_id() == carried
    forged = make_report(headers={"x-dead-letter-id": "../../etc"})
    assert forged.dead_letter_id is None
    assert forged.record_id() == make_report().record_id()


def test_without_an_original_topic_the_dead_letter_itself_is_the_identity(
    make_report: ReportFactory,
) -> None:
    a = make_report(headers={"x-original-topic": None}, partition=1, offset=5)
    again = make_report(headers={"x-original-topic": None}, partition=1, offset=5)
    other = make_report(headers={"x-original-topic": None}, partition=1, offset=6)
    assert a.record_id() == again.record_id() != other.record_id()


def test_headers_are_read_leniently(make_report: ReportFactory) -> None:
    odd = make_report(
        headers={"x-retry-count": "many", "x-failed-at": "yesterday", "x-original-offset": "?"}
    )
    assert odd.retry_count == 0
    assert odd.original_offset is None
    assert odd.failed_at.tzinfo is not None  # the message timestamp instead
    bare = make_report(headers={"x-error-type": None, "x-error-message": None})
    assert (bare.error.type, bare.error.message) == ("unknown", "")


def test_envelope_fields_and_trace_are_picked_up(make_report: ReportFactory) -> None:
    r = make_report()
    assert (r.event_id, r.event_type, r.execution_id) == ("e-1", "execution.requested", "x-1")
    assert r.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert make_report(headers={"traceparent": "garbage"}).trace_id is None
    assert make_report(headers={"traceparent": f"00-{'0' * 32}-{'1' * 16}-01"}).trace_id is None
    assert make_report(headers={"traceparent": None}).trace == StoredTraceContext()


def test_the_stored_trace_context_keeps_its_tracestate(
    make_report: ReportFactory, make_policy: Callable[..., RetryPolicy]
) -> None:
    report = make_report(headers={"tracestate": "vendor=x"})
    record = tr.open_record(report, make_policy(), T0, lambda low, high: high)
    # Stored as the two fields the record (and its document and admin view) always had ...
    assert (record.traceparent, record.tracestate) == (
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "vendor=x",
    )
    assert record.trace_id == "0af7651916cd43dd8448eb211c80319c"
    # ... and read back as the one typed context every retry continues.
    assert record.trace == report.trace
    parent = record.trace.span_context
    assert parent is not None
    assert parent.trace_state.get("vendor") == "x"
    untyped = make_report(value=b"plain", headers={"event_type": "from.header"})
    assert untyped.event_type == "from.header"
    assert untyped.event_id is None


@pytest.mark.parametrize(
    ("value", "encoding", "shown"),
    [
        (b'{"a": [1, 2.5, null]}', PayloadEncoding.JSON, {"a": [1, 2.5, None]}),
        (b"hello", PayloadEncoding.TEXT, "hello"),
        (b'{"$where": 1}', PayloadEncoding.TEXT, '{"$where": 1}'),
        (b'{"a.b": 1}', PayloadEncoding.TEXT, '{"a.b": 1}'),
        (b'{"big": 99999999999999999999}', PayloadEncoding.TEXT, '{"big": 99999999999999999999}'),
        (b'{"x": NaN}', PayloadEncoding.TEXT, '{"x": NaN}'),
        (b"\xff\x00", PayloadEncoding.BASE64, base64.b64encode(b"\xff\x00").decode()),
        (None, PayloadEncoding.NONE, None),
    ],
)
def test_payload_is_kept_readable(
    value: bytes | None, encoding: PayloadEncoding, shown: object
) -> None:
    assert readable_payload(value) == (shown, encoding)


def test_keys_are_text_or_marked_base64() -> None:
    assert readable_key(b"exec-1") == "exec-1"
    assert readable_key(b"\xff") == "base64:/w=="
    assert readable_key(None) is None


def test_credentials_are_masked_when_shown() -> None:
    payload = {
        "webhook": {"url": "http://x", "secret": "s"},
        "items": [{"api_key": "k", "n": 1}],
        "password_hash": "h",
    }
    assert mask_secrets(payload) == {
        "webhook": {"url": "http://x", "secret": "***"},
        "items": [{"api_key": "***", "n": 1}],
        "password_hash": "***",
    }
    assert mask_headers({"Authorization": "Bearer t", "traceparent": "00-1"}) == {
        "Authorization": "***",
        "traceparent": "00-1",
    }
