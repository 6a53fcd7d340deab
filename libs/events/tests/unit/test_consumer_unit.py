"""ConsumerRunner's constructor contract, and its commits over a stand-in consumer: one the
group refuses or that never ends leaves the messages for redelivery and stops nothing (the
rest needs a broker: integration tests)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from integr8scode_events.kafka.consumer import ConsumerRunner, _CommitOnRevoke
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


class _Consumer:
    """Stands in for AIOKafkaConsumer's ``commit``: refuses, hangs, or takes the offsets."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.committed: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.outcome == "refused":
            raise CommitFailedError("the group has already rebalanced")
        if self.outcome == "hangs":  # aiokafka's retries while it closes, coordinator unknown
            await asyncio.Event().wait()
        self.committed.append(dict(offsets))


A, B = TopicPartition("execution_events", 0), TopicPartition("execution_events", 1)


def _with(consumer: _Consumer, settings: KafkaSettings) -> ConsumerRunner:
    runner = ConsumerRunner(
        settings=settings,
        group_id="unit",
        topics=["execution_events"],
        publisher=EventPublisher(settings, "unit"),
        raw_handler=raw_handler,
        stop_grace_s=0.05,
    )
    runner._consumer = consumer  # its commit is all the runner uses of it here
    runner._pending.update({A: 10, B: 20})
    return runner


@pytest.mark.parametrize("outcome", ["refused", "hangs"])
async def test_a_commit_that_fails_or_never_ends_is_logged_and_left_for_redelivery(
    settings: KafkaSettings, outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    runner = _with(_Consumer(outcome), settings)
    with caplog.at_level(logging.WARNING):
        await runner.commit_or_leave(None, "periodic")
    assert "offsets not committed (periodic" in caplog.text
    assert runner._pending == {A: 10, B: 20}  # kept: tried again at the next commit


@pytest.mark.parametrize(
    ("outcome", "committed"), [("hangs", []), ("refused", []), ("takes", [{A: 10}])]
)
async def test_revoked_partitions_are_forgotten_whatever_their_commit_did(
    settings: KafkaSettings, outcome: str, committed: list[dict[TopicPartition, int]]
) -> None:
    consumer = _Consumer(outcome)
    runner = _with(consumer, settings)
    await runner.commit_or_leave({A}, "revoked", forget=True)
    assert consumer.committed == committed
    assert runner._pending == {B: 20}  # A is someone else's now; B still commits later
    consumer.outcome = "takes"
    await runner.commit_or_leave(None, "periodic")
    assert consumer.committed == [*committed, {B: 20}]
    assert runner._pending == {}


async def test_a_revocation_ends_even_when_its_commit_would_never(
    settings: KafkaSettings,
) -> None:
    # What kept a notifier out of its group after a broker restart: the rebalance waited on a
    # commit that aiokafka retried without end while the consumer was closing.
    runner = _with(_Consumer("hangs"), settings)
    async with asyncio.timeout(5):
        await _CommitOnRevoke(runner).on_partitions_revoked([A, B])
    assert runner._pending == {}
