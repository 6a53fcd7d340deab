"""EventPublisher tells "not sent" from "taken, not confirmed": a fake producer stands in for
aiokafka (the real broker's side is in tests/e2e/test_zz_resilience.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, RequestTimedOutError
from tests.kafka_support import sample_event

from integr8scode_events import PublishError, PublishUncertainError
from integr8scode_events.kafka import EventPublisher, KafkaSettings


class FakeProducer:
    """``send`` hands back the delivery future; the test decides how it ends."""

    def __init__(self, *, refuse: bool = False, stall_send: bool = False) -> None:
        self.refuse = refuse
        self.stall_send = stall_send
        self.delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def send(self, topic: str, **_: Any) -> asyncio.Future[Any]:
        if self.refuse:
            raise KafkaConnectionError("no broker")
        if self.stall_send:
            await asyncio.sleep(3600)  # waiting for metadata or buffer space that never comes
        return self.delivery


def _publisher(producer: FakeProducer) -> EventPublisher:
    publisher = EventPublisher(
        KafkaSettings(bootstrap_servers="127.0.0.1:1"), "unit", publish_timeout_s=0.2
    )
    publisher._producer = producer  # the fake stands in for aiokafka
    publisher._acked_recently_until = float("inf")
    return publisher


async def test_an_acknowledged_message_is_a_record() -> None:
    producer = FakeProducer()
    producer.delivery.set_result(type("Meta", (), {"partition": 2, "offset": 7})())
    record = await _publisher(producer).publish(sample_event())
    assert (record.partition, record.offset) == (2, 7)


async def test_refused_before_the_hand_over_is_a_plain_publish_error() -> None:
    with pytest.raises(PublishError) as raised:
        await _publisher(FakeProducer(refuse=True)).publish(sample_event())
    assert not isinstance(raised.value, PublishUncertainError)


async def test_not_taken_in_time_is_a_plain_publish_error() -> None:
    with pytest.raises(PublishError) as raised:
        await _publisher(FakeProducer(stall_send=True)).publish(sample_event())
    assert not isinstance(raised.value, PublishUncertainError)


async def test_taken_but_not_acknowledged_in_time_is_uncertain() -> None:
    producer = FakeProducer()
    with pytest.raises(PublishUncertainError):
        await _publisher(producer).publish(sample_event())
    assert not producer.delivery.cancelled()  # the producer's delivery goes on, untouched


async def test_a_delivery_that_fails_after_the_hand_over_is_uncertain() -> None:
    producer = FakeProducer()
    producer.delivery.set_exception(RequestTimedOutError())
    with pytest.raises(PublishUncertainError):
        await _publisher(producer).publish(sample_event())
