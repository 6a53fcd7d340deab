"""A failing consumer against the RUNNING dlq-processor: the dead letter is stored, retried to
the group that failed (in the original trace), and discarded after the last attempt.

The service runs with the local profile (services.sh): 3 attempts, backoff 1 s … 3 s.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from tests.jaeger import JaegerSpan, JaegerTrace, wait_for_trace
from tests.kafka_support import sample_event
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_events import ExecutionRequested
from integr8scode_events.kafka import EventPublisher
from integr8scode_telemetry import TelemetryHandle

if TYPE_CHECKING:  # conftest is not importable at run time (--import-mode=importlib)
    from conftest import ConsumerFactory, DeliveriesFactory

STACK = local_stack()
MAX_ATTEMPTS = 3  # DLQ_DEFAULT_MAX_ATTEMPTS of the local profile


async def _publish_traced(
    publisher: EventPublisher, telemetry: TelemetryHandle, topic: str
) -> tuple[ExecutionRequested, str]:
    event = sample_event()
    assert event.execution_id is not None
    tracer = telemetry.tracer_provider.get_tracer("dlq-it")
    with tracer.start_as_current_span("dlq-it.request") as parent:
        await publisher.publish(event, topic=topic)
    return event, format(parent.get_span_context().trace_id, "032x")


async def _record(
    dlq: httpx.AsyncClient, record_id: str, status: str | None = None, timeout_s: float = 60
) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        response = await dlq.get(f"/api/v1/dlq/messages/{record_id}")
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if status is None or body["status"] == status else None

    return await eventually(found, timeout_s=timeout_s, what=f"dead letter {record_id} {status}")


async def _record_of_execution(dlq: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    async def listed() -> dict[str, Any] | None:
        response = await dlq.get("/api/v1/dlq/messages", params={"execution_id": execution_id})
        items = response.json()["items"] if response.status_code == 200 else []
        return items[0] if items else None

    return await eventually(listed, timeout_s=30, what=f"dead letter of {execution_id}")


async def test_a_failed_message_is_retried_to_its_group_in_the_original_trace(
    *,
    publisher: EventPublisher,
    telemetry: TelemetryHandle,
    consumer: ConsumerFactory,
    deliveries: DeliveriesFactory,
    topic: str,
    dlq: httpx.AsyncClient,
) -> None:
    group = f"test-dlq-{uuid.uuid4().hex[:8]}"
    seen = deliveries(1)
    await consumer(group, seen)
    event, trace_id = await _publish_traced(publisher, telemetry, topic)

    original, retry = await seen.wait_for(2)
    assert retry.headers["x-retry-count"] == "1"
    assert retry.headers["x-retry-group"] == group
    record_id = retry.headers["x-dead-letter-id"]
    assert retry.value == original.value
    assert retry.key == original.key == str(event.execution_id).encode()
    assert retry.headers["event_type"] == "execution.requested"
    assert retry.headers["correlation_id"] == event.correlation_id
    assert not {"x-error-type", "x-error-message", "x-original-topic"} & set(retry.headers)
    assert retry.headers["traceparent"].split("-")[1] == trace_id
    assert retry.headers["traceparent"] != original.headers["traceparent"]

    record = await _record(dlq, record_id, status="retried")
    assert record["topic"] == topic
    assert (record["partition"], record["offset"]) == (0, 0)
    assert record["consumer_group"] == group
    assert record["event_id"] == str(event.event_id)
    assert record["event_type"] == "execution.requested"
    assert record["execution_id"] == event.execution_id
    assert record["key"] == event.execution_id
    assert record["payload_encoding"] == "json"
    assert record["payload"]["event_id"] == str(event.event_id)
    assert record["error"] == {
        "type": "builtins.RuntimeError",
        "message": "test handler fails delivery 1",
    }
    assert record["retry_count"] == 1
    assert record["max_attempts"] == MAX_ATTEMPTS
    assert record["policy"]["rule"] == "default"
    assert record["next_attempt_at"] is None
    assert record["trace_id"] == trace_id
    assert record["headers"]["traceparent"] == original.headers["traceparent"]
    assert record["headers"]["x-consumer-group"] == group
    first, second = record["attempts"]
    assert first["attempt"] == 0
    assert first["error"]["message"] == "test handler fails delivery 1"
    assert first["trace_id"] == trace_id
    assert second["attempt"] == 1
    assert (second["published_partition"], second["published_offset"]) == (0, 1)
    assert second["trace_id"] == trace_id
    assert second["error"] is None

    listed = await dlq.get(
        "/api/v1/dlq/messages", params={"execution_id": event.execution_id, "status": "retried"}
    )
    assert [item["id"] for item in listed.json()["items"]] == [record_id]

    telemetry.force_flush()
    trace = await wait_for_trace(STACK.jaeger_query, trace_id, until=_retried_trace(topic))
    _assert_retry_trace(trace, topic, group, record_id, event)


def _retried_trace(topic: str) -> Any:
    def complete(trace: JaegerTrace) -> bool:
        return (
            len(trace.named("kafka.consume")) == 2
            and len(trace.named("dlq.consume")) == 1
            and len(trace.named("dlq.retry")) == 1
            and len(trace.named(f"publish {topic}")) == 2
        )

    return complete


def _assert_retry_trace(
    trace: JaegerTrace, topic: str, group: str, record_id: str, event: ExecutionRequested
) -> None:
    publishes = trace.named(f"publish {topic}")
    original = next(s for s in publishes if s.service != "dlq-processor")
    republish = next(s for s in publishes if s.service == "dlq-processor")
    dlq_consume = trace.one("dlq.consume")
    dlq_retry = trace.one("dlq.retry")
    assert dlq_consume.service == "dlq-processor"
    assert dlq_consume.kind == "consumer"
    assert trace.parent_of(dlq_consume) == original, "dlq.consume continues the original"
    assert dlq_consume.tag("dlq.id") == record_id
    assert trace.parent_of(dlq_retry) == original, "the retry's parent is the original context"
    assert trace.parent_of(republish) == dlq_retry
    expected: dict[str, Any] = {
        "dlq.id": record_id,
        "dlq.retry_count": 1,
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group,
        "event.id": str(event.event_id),
        "event.type": "execution.requested",
        "execution.id": event.execution_id,
    }
    assert {k: dlq_retry.tag(k) for k in expected} == expected
    consumes: list[JaegerSpan] = trace.named("kafka.consume")
    assert {trace.parent_of(c).span_id for c in consumes} == {original.span_id, republish.span_id}


async def test_a_message_that_keeps_failing_is_discarded_then_retried_by_an_admin(
    *,
    publisher: EventPublisher,
    telemetry: TelemetryHandle,
    consumer: ConsumerFactory,
    deliveries: DeliveriesFactory,
    topic: str,
    dlq: httpx.AsyncClient,
) -> None:
    group = f"test-dlq-{uuid.uuid4().hex[:8]}"
    seen = deliveries(1_000)
    await consumer(group, seen)
    event, _ = await _publish_traced(publisher, telemetry, topic)

    listed = await _record_of_execution(dlq, str(event.execution_id))
    record = await _record(dlq, listed["id"], status="discarded")
    last = MAX_ATTEMPTS + 1
    assert record["discard_reason"] == (
        f"max attempts ({MAX_ATTEMPTS}) reached: builtins.RuntimeError: "
        f"test handler fails delivery {last}"
    )
    assert record["retry_count"] == MAX_ATTEMPTS
    assert [a["attempt"] for a in record["attempts"]] == list(range(last))
    assert all(a["error"] is not None for a in record["attempts"])
    assert record["next_attempt_at"] is None
    assert [m.headers.get("x-retry-count") for m in seen.seen] == [
        None,
        *(str(n) for n in range(1, last)),
    ]

    again = await dlq.post(f"/api/v1/dlq/messages/{record['id']}/discard", json={"reason": "x"})
    assert again.status_code == 409, again.text
    assert "already discarded" in again.json()["detail"]

    retried = await dlq.post(f"/api/v1/dlq/messages/{record['id']}/retry")
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] in {"scheduled", "retrying"}
    assert retried.json()["max_attempts"] == last
    await seen.wait_for(last + 1)
    assert seen.seen[-1].headers["x-retry-count"] == str(last)

    async def discarded_again() -> dict[str, Any] | None:
        body = await _record(dlq, record["id"])
        return body if body["discard_reason"].startswith(f"max attempts ({last})") else None

    final = await eventually(discarded_again, timeout_s=30, what="discarded after the extra try")
    assert final["status"] == "discarded"
    assert [a["action"] for a in final["admin_actions"]] == ["retry"]

    stats = (await dlq.get("/api/v1/dlq/stats")).json()
    assert stats["by_topic"][topic]["by_status"]["discarded"] == 1
    assert stats["by_consumer_group"][group]["total"] == 1
    assert stats["total"] >= 1


async def test_other_consumer_groups_skip_the_retry(
    *,
    publisher: EventPublisher,
    telemetry: TelemetryHandle,
    consumer: ConsumerFactory,
    deliveries: DeliveriesFactory,
    topic: str,
    dlq: httpx.AsyncClient,
) -> None:
    failing, other = f"test-dlq-{uuid.uuid4().hex[:8]}", f"test-dlq-{uuid.uuid4().hex[:8]}"
    failing_deliveries, other_deliveries = deliveries(1), deliveries(0)
    await consumer(failing, failing_deliveries)
    await consumer(other, other_deliveries)
    await _publish_traced(publisher, telemetry, topic)
    _, retry = await failing_deliveries.wait_for(2)
    record = await _record(dlq, retry.headers["x-dead-letter-id"], status="retried")
    retry_offset = record["attempts"][1]["published_offset"]

    admin = AIOKafkaAdminClient(bootstrap_servers=STACK.kafka_bootstrap)
    await admin.start()
    try:

        async def other_group_past_the_retry() -> bool:
            offsets = await admin.list_consumer_group_offsets(other)
            committed = offsets.get(TopicPartition(topic, 0))
            return committed is not None and committed.offset > retry_offset

        await eventually(other_group_past_the_retry, timeout_s=30, what=f"{other} committed")
    finally:
        await admin.close()
    assert len(other_deliveries.seen) == 1, "the other group handled only the original"
