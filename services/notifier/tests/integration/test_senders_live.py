"""Webhook and Slack sends to HTTP servers started by the test on 127.0.0.1: what arrives, how
answers are classified, and the HTTP CLIENT span each attempt makes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests.e2e.notify_receivers import Answer, RecordingReceiver

from integr8scode_events import ExecutionCompleted, ProducerInfo
from integr8scode_events.payloads import ExecutionCompletedPayload, OutputSummary, ResourceUsage
from integr8scode_notifier.adapters.address_guard import AddressGuard
from integr8scode_notifier.adapters.slack import SlackSender
from integr8scode_notifier.adapters.webhook import WebhookSender
from integr8scode_notifier.domain.addresses import AddressPolicy
from integr8scode_notifier.domain.notifications import SlackTarget, Target, WebhookTarget
from integr8scode_notifier.domain.ports import OutboundMessage
from integr8scode_notifier.domain.retry import Outcome
from integr8scode_notifier.domain.signing import verify
from integr8scode_notifier.domain.summary import ExecutionFacts, summarize

SECRET = "integration-secret-0123456789"
LOCAL = AddressGuard(AddressPolicy(allow_loopback=True))


def _message(target: Target, attempt: int = 1) -> OutboundMessage:
    event = ExecutionCompleted(
        producer=ProducerInfo(service="it", version="0"),
        correlation_id="c",
        execution_id=f"exec-{uuid.uuid4().hex[:8]}",
        user_id="u",
        occurred_at=datetime(2030, 1, 1, tzinfo=UTC),
        payload=ExecutionCompletedPayload(
            exit_code=0,
            resource_usage=ResourceUsage(cpu_time_ms=1, wall_time_ms=42, peak_memory_kb=1),
            output=OutputSummary(stdout_bytes=3, stderr_bytes=0, stdout_preview="45\n"),
        ),
    )
    return OutboundMessage(
        notification_id=str(uuid.uuid4()),
        event_id=str(event.event_id),
        event_type=event.event_type,
        target=target,
        summary=summarize(event, ExecutionFacts("python", "3.11"), "http://127.0.0.1:8000"),
        attempt=attempt,
    )


def _client_spans(exporter: InMemorySpanExporter) -> list[tuple[str, int | None]]:
    found = []
    for span in exporter.get_finished_spans():
        if span.kind is SpanKind.CLIENT and span.attributes is not None:
            code = span.attributes.get("http.response.status_code")
            code = code if code is not None else span.attributes.get("http.status_code")
            url = span.attributes.get("url.full") or span.attributes.get("http.url")
            found.append((str(url), int(code) if isinstance(code, int) else None))
    return found


@pytest.fixture
async def receiver() -> AsyncIterator[RecordingReceiver]:
    async with RecordingReceiver() as server:
        yield server


@pytest.fixture
async def slack() -> AsyncIterator[SlackSender]:
    sender = SlackSender(LOCAL, timeout_s=1.0, user_agent="notifier-it")
    yield sender
    await sender.close()


async def test_a_webhook_arrives_signed_with_its_headers(
    receiver: RecordingReceiver, client_spans: InMemorySpanExporter
) -> None:
    sender = WebhookSender(LOCAL, timeout_s=2, user_agent="notifier-it")
    message = _message(WebhookTarget(receiver.url("/hook?token=t"), SECRET))
    result = await sender.send(message)

    assert result.outcome is Outcome.DELIVERED
    assert result.status_code == 200
    (request,) = receiver.requests
    assert request.path == "/hook?token=t"
    assert request.header("Content-Type") == "application/json"
    assert request.header("X-Integr8scode-Delivery") == message.notification_id
    assert request.header("X-Integr8scode-Event") == "execution.completed"
    assert request.header("User-Agent") == "notifier-it"
    timestamp = request.header("X-Integr8scode-Timestamp")
    signature = request.header("X-Integr8scode-Signature")
    assert timestamp is not None
    assert signature is not None
    assert signature.startswith("sha256=")
    assert verify(SECRET, timestamp, request.body, signature, now=time.time())
    assert not verify(
        "another-secret-entirely", timestamp, request.body, signature, now=time.time()
    )
    body = json.loads(request.body)
    assert body["notification_id"] == message.notification_id
    assert body["execution"]["language"] == "python"
    assert body["execution"]["status"] == "completed"
    assert body["execution"]["duration_ms"] == 42

    ((url, code),) = _client_spans(client_spans)
    assert code == 200
    assert url.startswith("http://127.0.0.1:")


async def test_a_webhook_without_a_secret_is_sent_unsigned(receiver: RecordingReceiver) -> None:
    sender = WebhookSender(LOCAL, timeout_s=2, user_agent="notifier-it")
    result = await sender.send(_message(WebhookTarget(receiver.url(), None)))
    assert result.outcome is Outcome.DELIVERED
    assert receiver.requests[0].header("X-Integr8scode-Signature") is None
    assert receiver.requests[0].header("X-Integr8scode-Timestamp")


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer(503, "down for maintenance"), Outcome.RETRYABLE),
        (Answer(429, "slow down", {"Retry-After": "7"}), Outcome.RETRYABLE),
        (Answer(404, "no such hook"), Outcome.PERMANENT),
        (Answer(302, "", {"Location": "http://169.254.169.254/"}), Outcome.PERMANENT),
        (Answer(204, ""), Outcome.DELIVERED),
    ],
)
async def test_webhook_answers_are_classified(
    receiver: RecordingReceiver, answer: Answer, outcome: Outcome
) -> None:
    receiver.answer_with(answer)
    sender = WebhookSender(LOCAL, timeout_s=2, user_agent="notifier-it")
    result = await sender.send(_message(WebhookTarget(receiver.url(), SECRET)))
    assert result.outcome is outcome
    assert result.status_code == answer.status
    assert len(receiver.requests) == 1  # a redirect is not followed
    if answer.status == 429:
        assert result.retry_after_s == 7


async def test_a_slow_or_absent_receiver_is_worth_a_retry(receiver: RecordingReceiver) -> None:
    receiver.answer_with(Answer(200, "late", delay_s=2.0))
    sender = WebhookSender(LOCAL, timeout_s=0.3, user_agent="notifier-it")
    slow = await sender.send(_message(WebhookTarget(receiver.url(), None)))
    assert slow.outcome is Outcome.RETRYABLE
    assert slow.error == "no answer within 0.3s"

    closed = RecordingReceiver()
    async with closed:
        url = closed.url()
    absent = await sender.send(_message(WebhookTarget(url, None)))
    assert absent.outcome is Outcome.RETRYABLE
    assert absent.error is not None
    assert "ConnectError" in absent.error


async def test_the_loopback_is_refused_unless_allowed(receiver: RecordingReceiver) -> None:
    strict = WebhookSender(AddressGuard(AddressPolicy()), timeout_s=2, user_agent="it")
    result = await strict.send(_message(WebhookTarget(receiver.url(), None)))
    assert result.outcome is Outcome.REFUSED
    assert receiver.requests == []

    slack = SlackSender(AddressGuard(AddressPolicy()), timeout_s=1, user_agent="it")
    try:
        refused = await slack.send(_message(SlackTarget(receiver.url("/services/T/B/X"))))
    finally:
        await slack.close()
    assert refused.outcome is Outcome.REFUSED
    assert receiver.requests == []


async def test_a_slack_message_arrives_as_the_incoming_webhook_protocol_expects(
    receiver: RecordingReceiver, slack: SlackSender, client_spans: InMemorySpanExporter
) -> None:
    result = await slack.send(_message(SlackTarget(receiver.url("/services/T1/B2/SECRET"))))
    assert result.outcome is Outcome.DELIVERED
    assert result.status_code == 200
    (request,) = receiver.requests
    assert request.path == "/services/T1/B2/SECRET"
    assert (request.header("Content-Type") or "").startswith("application/json")
    body = request.json()
    assert body["text"].startswith(":white_check_mark: Execution ")
    assert [block["type"] for block in body["blocks"]][:2] == ["header", "section"]

    ((url, code),) = _client_spans(client_spans)
    assert code == 200
    assert "SECRET" not in url
    assert url.endswith("/***")


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer(500, "internal_error"), Outcome.RETRYABLE),
        (Answer(404, "no_service"), Outcome.PERMANENT),
        (Answer(410, "channel_is_archived"), Outcome.PERMANENT),
    ],
)
async def test_slack_answers_are_classified(
    receiver: RecordingReceiver, slack: SlackSender, answer: Answer, outcome: Outcome
) -> None:
    receiver.answer_with(answer)
    result = await slack.send(_message(SlackTarget(receiver.url("/services/T/B/X"))))
    assert result.outcome is outcome
    assert result.error == f"HTTP {answer.status}: {answer.body}"
    assert len(receiver.requests) == 1  # the SDK's own retries are off


async def test_a_slow_slack_is_worth_a_retry(
    receiver: RecordingReceiver, slack: SlackSender
) -> None:
    receiver.answer_with(Answer(200, "ok", delay_s=3.0))
    result = await slack.send(_message(SlackTarget(receiver.url("/services/T/B/SECRET"))))
    assert result.outcome is Outcome.RETRYABLE
    assert "SECRET" not in (result.error or "")
