"""The delivery state machine: records, retries, skips on redelivery, announcements, spans."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from opentelemetry.trace import StatusCode

from integr8scode_events import ExecutionCompleted, NotificationFailed, NotificationSent
from integr8scode_events import headers as h
from integr8scode_events.errors import PublishError
from integr8scode_events.kafka import MessageContext
from integr8scode_notifier.delivery import DELIVER_SPAN
from integr8scode_notifier.domain.errors import (
    DeliveryFailedError,
    SecretUnavailableError,
    StoreUnavailableError,
)
from integr8scode_notifier.domain.notifications import (
    Channel,
    ChannelSetting,
    DeliveryStatus,
    SlackTarget,
    UserChannels,
    notification_id,
)
from integr8scode_notifier.domain.retry import AttemptResult
from integr8scode_notifier.handlers.terminal import TerminalEventHandlers

if TYPE_CHECKING:
    from conftest import Harness

MakeEvent = Callable[..., ExecutionCompleted]
OK = AttemptResult.of_status(200)
UNAVAILABLE = AttemptResult.of_status(503, "busy")


async def test_a_user_without_settings_gets_nothing(
    harness: Harness, make_event: MakeEvent
) -> None:
    span = await harness.handle(make_event())
    assert harness.webhook.sent == []
    assert harness.slack.sent == []
    assert harness.store.records == {}
    assert harness.publisher.published == []
    consume = next(s for s in harness.exporter.get_finished_spans() if s.name == "kafka.consume")
    assert consume.attributes is not None
    assert consume.attributes["notification.channels"] == 0
    assert span.get_span_context().span_id == consume.context.span_id


async def test_both_channels_are_delivered_recorded_and_announced(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure()
    event = make_event()
    await harness.handle(event)

    assert len(harness.webhook.sent) == 1
    assert len(harness.slack.sent) == 1
    for channel in Channel:
        (record,) = harness.store.by_channel(channel)
        assert record.id == notification_id(str(event.event_id), channel)
        assert record.status is DeliveryStatus.DELIVERED
        assert record.attempts == 1
        assert record.final
        assert record.announced
        assert record.delivered_at is not None
        assert record.trace_id
        assert record.user_id == "user-1"
        assert record.execution_id == event.execution_id
    webhook_record = harness.store.by_channel(Channel.WEBHOOK)[0]
    assert webhook_record.target == "https://hooks.example.test/in"  # no query (token)
    assert harness.store.by_channel(Channel.SLACK)[0].target == "https://hooks.slack.com/***"

    sent = harness.publisher.published
    assert {type(e) for e in sent} == {NotificationSent}
    assert {e.payload.channel for e in sent if isinstance(e, NotificationSent)} == {
        "webhook",
        "slack",
    }
    for announcement in sent:
        assert announcement.correlation_id == event.correlation_id
        assert announcement.execution_id == event.execution_id
        assert announcement.user_id == event.user_id

    consume = harness.spans("kafka.consume")[0]
    delivers = harness.spans(DELIVER_SPAN)
    assert {s.attributes["notification.channel"] for s in delivers if s.attributes} == {
        "webhook",
        "slack",
    }
    for span in delivers:
        assert span.parent is not None
        assert span.parent.span_id == consume.context.span_id
        assert span.attributes is not None
        assert span.attributes["notification.id"] in harness.store.records
        assert span.status.status_code is not StatusCode.ERROR


async def test_a_redelivered_event_sends_nothing_again(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure()
    event = make_event()
    await harness.handle(event)
    await harness.handle(event)
    assert len(harness.webhook.sent) == 1
    assert len(harness.slack.sent) == 1
    assert len(harness.publisher.published) == 2
    skipped = [
        s
        for s in harness.spans(DELIVER_SPAN)
        if s.attributes and s.attributes.get("notification.skipped")
    ]
    assert len(skipped) == 2


async def test_a_channel_failing_after_its_retries_raises_and_is_retried_alone_later(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure()
    harness.webhook.script(UNAVAILABLE)
    event = make_event()

    with pytest.raises(DeliveryFailedError, match=r"webhook delivery \S+ failed after 3 attempts"):
        await harness.handle(event)

    (webhook,) = harness.store.by_channel(Channel.WEBHOOK)
    assert webhook.status is DeliveryStatus.FAILED
    assert not webhook.final
    assert webhook.attempts == 3
    assert webhook.last_status_code == 503
    assert webhook.error == "HTTP 503: busy"
    assert [a for _, a in harness.store.attempt_updates] == [1, 2]
    assert len(harness.sleeps) == 2
    assert 0.25 <= harness.sleeps[0] <= 0.5
    assert 0.5 <= harness.sleeps[1] <= 1.0
    failed = [e for e in harness.publisher.published if isinstance(e, NotificationFailed)]
    assert len(failed) == 1
    assert failed[0].payload.attempts == 3
    assert failed[0].payload.status_code == 503
    (slack,) = harness.store.by_channel(Channel.SLACK)
    assert slack.status is DeliveryStatus.DELIVERED
    error_spans = [
        s for s in harness.spans(DELIVER_SPAN) if s.status.status_code is StatusCode.ERROR
    ]
    assert [s.attributes["notification.channel"] for s in error_spans if s.attributes] == [
        "webhook"
    ]

    # The DLQ processor sends the message again: only the webhook is redone.
    harness.webhook.script(OK)
    await harness.handle(event)
    (webhook,) = harness.store.by_channel(Channel.WEBHOOK)
    assert webhook.status is DeliveryStatus.DELIVERED
    assert webhook.attempts == 4  # cumulative across redeliveries
    assert len(harness.webhook.sent) == 4
    assert len(harness.slack.sent) == 1


async def test_a_permanent_failure_is_recorded_not_raised_and_not_retried(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure(slack=False)
    harness.webhook.script(AttemptResult.of_status(404, "no such hook"))
    event = make_event()
    await harness.handle(event)
    (record,) = harness.store.records.values()
    assert record.status is DeliveryStatus.FAILED
    assert record.final
    assert record.attempts == 1
    assert harness.sleeps == []
    (failed,) = harness.publisher.published
    assert isinstance(failed, NotificationFailed)
    assert failed.payload.status_code == 404
    assert failed.payload.error == "HTTP 404: no such hook"

    await harness.handle(event)
    assert len(harness.webhook.sent) == 1


async def test_a_refused_target_is_recorded_as_refused_without_retries(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure(webhook=False)
    harness.slack.script(AttemptResult.refused("target refused: 10.0.0.5 is a private address"))
    await harness.handle(make_event())
    (record,) = harness.store.records.values()
    assert record.status is DeliveryStatus.REFUSED
    assert record.final
    assert record.attempts == 1
    assert record.error == "target refused: 10.0.0.5 is a private address"
    assert len(harness.slack.sent) == 1
    (failed,) = harness.publisher.published
    assert isinstance(failed, NotificationFailed)
    (span,) = harness.spans(DELIVER_SPAN)
    assert span.status.status_code is StatusCode.ERROR


async def test_a_retry_after_is_honoured_and_the_next_attempt_delivers(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure(slack=False)
    harness.webhook.script(AttemptResult.of_status(429, "", retry_after="3"), OK)
    await harness.handle(make_event())
    (record,) = harness.store.records.values()
    assert record.status is DeliveryStatus.DELIVERED
    assert record.attempts == 2
    assert harness.sleeps == [3.0]


async def test_a_replay_that_reprocesses_notifies_again_under_new_ids(
    harness: Harness, make_event: MakeEvent, make_context: Callable[..., MessageContext]
) -> None:
    harness.configure(slack=False)
    handlers = TerminalEventHandlers(harness.dispatcher)
    event = make_event()
    tracer = harness.provider.get_tracer("test")

    for headers in (
        {},
        {h.REPLAY_SESSION: "s1"},  # replay without re-processing: same notification
        {h.REPLAY_SESSION: "s1", h.REPLAY_REPROCESS: "true"},
    ):
        with tracer.start_as_current_span("kafka.consume") as span:
            await handlers.on_terminal(event, make_context(span, headers))
    assert len(harness.webhook.sent) == 2
    assert len(harness.store.records) == 2


async def test_an_unannounced_outcome_is_announced_on_redelivery_without_resending(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure(slack=False)
    event = make_event()
    publish = harness.publisher.publish

    async def broker_down(_: object) -> None:
        raise PublishError("no broker")

    harness.publisher.publish = broker_down  # type: ignore[method-assign,assignment]
    with pytest.raises(PublishError):
        await harness.handle(event)
    (record,) = harness.store.records.values()
    assert record.status is DeliveryStatus.DELIVERED
    assert not record.announced

    harness.publisher.publish = publish  # type: ignore[method-assign]
    await harness.handle(event)
    assert len(harness.webhook.sent) == 1
    (sent,) = harness.publisher.published
    assert isinstance(sent, NotificationSent)
    assert harness.store.records[record.id].announced


async def test_the_store_being_down_is_not_a_delivery_failure(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure()
    harness.store.down = True
    with pytest.raises(StoreUnavailableError):
        await harness.handle(make_event())
    assert harness.webhook.sent == []


async def test_the_summary_says_unknown_when_the_execution_record_is_missing(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure(slack=False)
    harness.executions.default = None
    await harness.handle(make_event())
    summary = harness.webhook.sent[0].summary
    assert (summary.language, summary.language_version) == ("unknown", "unknown")
    assert summary.url.startswith("https://api.example.test/api/v1/executions/")


async def test_an_event_without_a_user_notifies_nobody(
    harness: Harness, make_event: MakeEvent
) -> None:
    harness.configure()
    await harness.handle(make_event(user_id=None))
    assert harness.webhook.sent == []


def test_notification_ids_are_deterministic_per_key_and_channel() -> None:
    assert notification_id("k", Channel.WEBHOOK) == notification_id("k", Channel.WEBHOOK)
    assert notification_id("k", Channel.WEBHOOK) != notification_id("k", Channel.SLACK)
    assert notification_id("k", Channel.WEBHOOK) != notification_id("k2", Channel.WEBHOOK)


async def test_a_credential_that_cant_be_opened_fails_that_channel_once_and_finally(
    harness: Harness, make_event: MakeEvent, caplog: pytest.LogCaptureFixture
) -> None:
    def unopenable() -> SlackTarget:
        raise SecretUnavailableError(
            "stored credential can't be opened: slack.webhook_url: sealed under key id 'k0', "
            "which is not in the key ring"
        )

    harness.configure()
    webhook = harness.settings.channels["user-1"].webhook
    harness.settings.channels["user-1"] = UserChannels(
        webhook=webhook,
        slack=ChannelSetting(Channel.SLACK, "https://hooks.slack.com/***", unopenable),
    )
    event = make_event()
    await harness.handle(event)  # no DeliveryFailedError: nothing to retry later

    assert harness.slack.sent == []  # never attempted
    assert len(harness.webhook.sent) == 1  # the other channel is delivered as usual
    (slack,) = harness.store.by_channel(Channel.SLACK)
    assert slack.status is DeliveryStatus.FAILED
    assert slack.final
    assert slack.attempts == 0
    assert slack.error is not None
    assert "key id 'k0'" in slack.error
    assert slack.announced
    failed = [e for e in harness.publisher.published if isinstance(e, NotificationFailed)]
    assert [e.payload.channel for e in failed] == ["slack"]
    assert "key id 'k0'" in (failed[0].payload.error or "")
    spans = [s for s in harness.exporter.get_finished_spans() if s.name == DELIVER_SPAN]
    slack_span = next(
        s for s in spans if s.attributes and s.attributes["notification.channel"] == "slack"
    )
    assert slack_span.status.status_code is StatusCode.ERROR
    assert "key id 'k0'" in caplog.text

    # A redelivery of the same event leaves the settled failure alone.
    await harness.handle(event)
    assert harness.slack.sent == []
    assert harness.store.by_channel(Channel.SLACK)[0].attempts == 0
