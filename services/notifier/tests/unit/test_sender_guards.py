"""The senders refuse before connecting: no packet leaves for a refused or malformed target."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from integr8scode_events import ExecutionCompleted
from integr8scode_notifier.adapters.address_guard import AddressGuard
from integr8scode_notifier.adapters.slack import GuardedResolver, SlackSender, redact_for_span
from integr8scode_notifier.adapters.webhook import WebhookSender, webhook_body
from integr8scode_notifier.domain.addresses import AddressPolicy
from integr8scode_notifier.domain.errors import TargetRefusedError
from integr8scode_notifier.domain.notifications import SlackTarget, Target, WebhookTarget
from integr8scode_notifier.domain.ports import OutboundMessage
from integr8scode_notifier.domain.retry import Outcome
from integr8scode_notifier.domain.summary import ExecutionFacts, summarize


async def _resolve(host: str, port: int) -> list[str]:
    answers = {"intranet.test": ["10.0.0.9"], "public.test": ["93.184.216.34"]}
    if host not in answers:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return answers[host]


GUARD = AddressGuard(AddressPolicy(), _resolve)


def _message(target: Target, make_event: Callable[..., ExecutionCompleted]) -> OutboundMessage:
    event = make_event()
    return OutboundMessage(
        notification_id="n-1",
        event_id=str(event.event_id),
        event_type=event.event_type,
        target=target,
        summary=summarize(event, ExecutionFacts("python", "3.11"), "http://api.test"),
        attempt=1,
    )


@pytest.fixture
async def slack() -> AsyncIterator[SlackSender]:
    sender = SlackSender(GUARD, timeout_s=2, user_agent="test")
    yield sender
    await sender.close()


@pytest.mark.parametrize(
    ("url", "outcome", "error"),
    [
        ("http://127.0.0.1:9/hook", Outcome.REFUSED, "127.0.0.1 is a loopback address"),
        ("http://[::ffff:169.254.169.254]/", Outcome.REFUSED, "link-local"),
        ("https://intranet.test/hook", Outcome.REFUSED, "intranet.test resolves to 10.0.0.9"),
        ("https://nowhere.test/hook", Outcome.PERMANENT, "nowhere.test does not resolve"),
        ("ftp://public.test/hook", Outcome.PERMANENT, "must be http(s)"),
        ("http://public.test:99999/", Outcome.PERMANENT, "invalid URL"),
    ],
)
async def test_the_webhook_sender_refuses_before_connecting(
    url: str, outcome: Outcome, error: str, make_event: Callable[..., ExecutionCompleted]
) -> None:
    sender = WebhookSender(GUARD, timeout_s=2, user_agent="test")
    result = await sender.send(_message(WebhookTarget(url, None), make_event))
    assert result.outcome is outcome
    assert result.error is not None
    assert error in result.error
    assert result.status_code is None


@pytest.mark.parametrize(
    ("url", "outcome", "error"),
    [
        ("http://169.254.169.254/latest/meta-data", Outcome.REFUSED, "link-local"),
        ("https://intranet.test/services/T/B/X", Outcome.REFUSED, "10.0.0.9"),
        ("https://nowhere.test/services/T/B/X", Outcome.PERMANENT, "does not resolve"),
    ],
)
async def test_the_slack_sender_refuses_before_connecting(
    slack: SlackSender,
    url: str,
    outcome: Outcome,
    error: str,
    make_event: Callable[..., ExecutionCompleted],
) -> None:
    result = await slack.send(_message(SlackTarget(url), make_event))
    assert result.outcome is outcome
    assert result.error is not None
    assert error in result.error
    assert "services/T/B/X" not in result.error


async def test_the_slack_connector_only_gets_checked_addresses() -> None:
    resolver = GuardedResolver(GUARD)
    (answer,) = await resolver.resolve("public.test", 443)
    assert answer["host"] == "93.184.216.34"
    assert answer["hostname"] == "public.test"
    assert answer["family"] == socket.AF_INET
    with pytest.raises(TargetRefusedError):
        await resolver.resolve("intranet.test", 443)


def test_spans_never_see_the_slack_webhook_path() -> None:
    assert redact_for_span("https://hooks.slack.com/services/T1/B2/SECRET") == (
        "https://hooks.slack.com/***"
    )


def test_the_webhook_body_is_the_summary_under_its_ids(
    make_event: Callable[..., ExecutionCompleted],
) -> None:
    message = _message(WebhookTarget("https://public.test/", None), make_event)
    body = webhook_body(message)
    assert body.startswith(b'{"event_id":')
    assert b'"notification_id":"n-1"' in body
    assert b'"event_type":"execution.completed"' in body
    assert b'"language":"python"' in body
    assert datetime.now(UTC).isoformat()[:4].encode() in body
