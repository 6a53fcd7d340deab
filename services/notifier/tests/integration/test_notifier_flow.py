"""The notifier as a whole (``create_app``, lifespan running) against the local stack's Kafka and
FerretDB, with a database and a consumer group of its own, delivering to receivers started by
the test: a terminal event in, deliveries recorded, outcomes announced; a receiver that keeps
failing sends the message to the dead-letter queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo.asynchronous.database import AsyncDatabase
from tests.e2e.notify_receivers import Answer, RecordingReceiver
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_events import ExecutionCompleted, ProducerInfo, decode_event
from integr8scode_events import headers as h
from integr8scode_events.kafka import EventPublisher, KafkaSettings
from integr8scode_events.payloads import ExecutionCompletedPayload, OutputSummary, ResourceUsage
from integr8scode_events.topics import (
    DEAD_LETTER_QUEUE,
    EXECUTION_EVENTS,
    NOTIFICATION_EVENTS,
    TopicSpec,
)
from integr8scode_notifier.app import create_app
from integr8scode_notifier.config import Settings

STACK = local_stack()
SECRET = "flow-secret-0123456789abcdef"
Db = AsyncDatabase[dict[str, Any]]


async def _end_offsets(topic: TopicSpec) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=STACK.kafka_bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def _start_group_at_end(group: str, topic: TopicSpec) -> None:
    """A new group would read the topic's whole history: start it at the end instead."""
    offsets = await _end_offsets(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=STACK.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def _records_since(offsets: dict[TopicPartition, int], key: str, count: int) -> list[Any]:
    """The first ``count`` records with ``key`` after ``offsets``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=STACK.kafka_bootstrap)
    await consumer.start()
    found: list[Any] = []
    try:
        consumer.assign(list(offsets))
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)

        async def enough() -> bool:
            batch = await consumer.getmany(timeout_ms=300)
            found.extend(r for part in batch.values() for r in part if r.key == key.encode())
            return len(found) >= count

        await eventually(enough, timeout_s=60, what=f"{count} record(s) keyed {key}")
    finally:
        await consumer.stop()
    return found


@asynccontextmanager
async def _notifier(database: Db, **overrides: Any) -> AsyncIterator[None]:
    group = f"notifier-it-{uuid.uuid4().hex[:8]}"
    await _start_group_at_end(group, EXECUTION_EVENTS)
    settings = Settings.model_validate(
        {
            "consumer_group": group,
            "allow_loopback_targets": True,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.1,
            "http_timeout_s": 2,
            "kafka": {"bootstrap_servers": STACK.kafka_bootstrap},
            "mongo": {"url": STACK.mongo_url, "database": database.name},
            "telemetry": {"sdk_disabled": True},
            **overrides,
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield


async def _publish_completed(user_id: str, execution_id: str) -> ExecutionCompleted:
    event = ExecutionCompleted(
        producer=ProducerInfo(service="notifier-it", version="0"),
        correlation_id=f"corr-{execution_id}",
        execution_id=execution_id,
        user_id=user_id,
        payload=ExecutionCompletedPayload(
            exit_code=0,
            resource_usage=ResourceUsage(cpu_time_ms=5, wall_time_ms=55, peak_memory_kb=100),
            output=OutputSummary(stdout_bytes=3, stderr_bytes=0, stdout_preview="45\n"),
        ),
    )
    async with EventPublisher(
        KafkaSettings(bootstrap_servers=STACK.kafka_bootstrap), "notifier-it"
    ) as publisher:
        await publisher.publish(event)
    return event


async def _configure(database: Db, webhook: RecordingReceiver, slack: RecordingReceiver) -> str:
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    await database["notification_settings"].insert_one(
        {
            "_id": user_id,
            "webhook": {"url": webhook.url("/hook"), "secret": SECRET},
            "slack": {"webhook_url": slack.url("/services/T/B/SECRET")},
        }
    )
    return user_id


async def test_a_terminal_event_is_delivered_recorded_and_announced(database: Db) -> None:
    async with RecordingReceiver() as webhook, RecordingReceiver() as slack:
        user_id = await _configure(database, webhook, slack)
        execution_id = f"exec-{uuid.uuid4().hex[:10]}"
        await database["executions"].insert_one(
            {"_id": execution_id, "user_id": user_id, "language": "bash", "language_version": "5.2"}
        )
        announced_from = await _end_offsets(NOTIFICATION_EVENTS)
        async with _notifier(database):
            event = await _publish_completed(user_id, execution_id)
            (hook,) = await webhook.wait_for(1)
            (message,) = await slack.wait_for(1)

            async def both_delivered() -> list[dict[str, Any]] | None:
                docs = await database["notifications"].find({"user_id": user_id}).to_list()
                done = [d for d in docs if d["status"] == "delivered" and d.get("announced")]
                return docs if len(done) == 2 else None

            docs = await eventually(both_delivered, timeout_s=30, what="both deliveries recorded")

        execution = hook.json()["execution"]
        assert (execution["language"], execution["language_version"]) == ("bash", "5.2")
        assert "bash 5.2" in message.json()["text"]
        by_channel = {d["channel"]: d for d in docs}
        assert by_channel["webhook"]["_id"] == hook.header("X-Integr8scode-Delivery")
        assert by_channel["webhook"]["target"] == webhook.url("/hook")
        assert by_channel["slack"]["target"] == f"{slack.base_url}/***"
        for doc in docs:
            assert doc["event_id"] == str(event.event_id)
            assert doc["attempts"] == 1
            assert doc["last_status_code"] == 200
            assert doc["delivered_at"] is not None

        records = await _records_since(announced_from, execution_id, 2)
        announcements = [decode_event(r.value) for r in records]
        assert {a.event_type for a in announcements} == {"notification.sent"}
        assert {a.correlation_id for a in announcements} == {event.correlation_id}
        assert {a.user_id for a in announcements} == {user_id}


async def test_a_receiver_that_keeps_failing_sends_the_message_to_the_dead_letter_queue(
    database: Db,
) -> None:
    async with RecordingReceiver() as webhook, RecordingReceiver() as slack:
        webhook.answer_with(Answer(503, "maintenance"))
        user_id = await _configure(database, webhook, slack)
        execution_id = f"exec-{uuid.uuid4().hex[:10]}"
        dead_from = await _end_offsets(DEAD_LETTER_QUEUE)
        async with _notifier(database, delivery_attempts=2):
            await _publish_completed(user_id, execution_id)
            (dead,) = await _records_since(dead_from, execution_id, 1)
            await webhook.wait_for(2)
            await slack.wait_for(1)

        headers = h.to_dict(dead.headers)
        assert headers[h.ERROR_TYPE].endswith("DeliveryFailedError")
        assert "webhook delivery" in headers[h.ERROR_MESSAGE]
        assert headers[h.CONSUMER_GROUP].startswith("notifier-it-")
        assert len(webhook.requests) == 2  # the runner did not multiply the attempts
        docs = {d["channel"]: d async for d in database["notifications"].find({})}
        assert docs["webhook"]["status"] == "failed"
        assert docs["webhook"]["final"] is False
        assert docs["webhook"]["attempts"] == 2
        assert docs["webhook"]["last_status_code"] == 503
        assert docs["slack"]["status"] == "delivered"
