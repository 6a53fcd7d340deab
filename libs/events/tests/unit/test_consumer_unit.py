"""ConsumerRunner's constructor contract (everything else needs a broker: integration tests)."""

from __future__ import annotations

import pytest

from integr8scode_events.kafka.consumer import ConsumerRunner
from integr8scode_events.kafka.handlers import HandlerRegistry, MessageContext, RawMessage
from integr8scode_events.kafka.publisher import EventPublisher
from integr8scode_events.kafka.settings import KafkaSettings


async def raw_handler(message: RawMessage, ctx: MessageContext) -> None:
    del message, ctx


def _runner(handlers: HandlerRegistry | None, raw: bool, settings: KafkaSettings) -> ConsumerRunner:
    return ConsumerRunner(
        settings=settings,
        group_id="unit",
        topics=["execution_requests"],
        publisher=EventPublisher(settings, "unit"),
        handlers=handlers,
        raw_handler=raw_handler if raw else None,
    )


@pytest.fixture
def settings() -> KafkaSettings:
    return KafkaSettings(bootstrap_servers="127.0.0.1:1")


def test_needs_exactly_one_kind_of_handler(settings: KafkaSettings) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _runner(HandlerRegistry(), raw=True, settings=settings)
    with pytest.raises(ValueError, match="exactly one"):
        _runner(None, raw=False, settings=settings)


def test_accepts_either_kind(settings: KafkaSettings) -> None:
    typed = _runner(HandlerRegistry(), raw=False, settings=settings)
    raw = _runner(None, raw=True, settings=settings)
    assert typed.group_id == raw.group_id == "unit"
    assert typed.handled == typed.dead_lettered == 0
    assert not typed.assigned.is_set()


async def test_stop_before_run_is_harmless(settings: KafkaSettings) -> None:
    runner = _runner(HandlerRegistry(), raw=False, settings=settings)
    runner.stop()
    runner.stop()
    await runner.commit_pending()  # no consumer yet: nothing to commit, no error
