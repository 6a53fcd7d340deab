"""Each component of the local stack, proven by a real round trip."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()


async def test_kafka_round_trip_through_a_consumer_group() -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    group = f"smoke-group-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=STACK.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(
        bootstrap_servers=STACK.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        sent = [f"message-{i}".encode() for i in range(5)]
        for value in sent:
            await producer.send_and_wait(topic, value, key=b"execution-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=STACK.kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: list[bytes] = []

        async def drained() -> bool:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                received.extend(m.value for m in messages if m.value is not None)
            return len(received) >= len(sent)

        await eventually(drained, timeout_s=30, what="all messages consumed")
        await consumer.commit()
        # Same key, same partition: order is kept.
        assert received == sent
        partitions = consumer.assignment()
        committed = {tp: await consumer.committed(tp) for tp in partitions}
        assert sum(offset or 0 for offset in committed.values()) == len(sent)
        assert all(isinstance(tp, TopicPartition) for tp in partitions)
    finally:
        await consumer.stop()


async def test_mongo_wire_insert_unique_index_and_query() -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        STACK.mongo_url, serverSelectionTimeoutMS=5000
    )
    collection = client["smoke"][f"items_{uuid.uuid4().hex[:8]}"]
    try:
        await collection.create_index("key", unique=True)
        await collection.insert_many([{"key": f"k{i}", "n": i} for i in range(10)])
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"key": "k3", "n": 99})
        found = await collection.find({"n": {"$gte": 7}}).sort("n", -1).to_list()
        assert [doc["n"] for doc in found] == [9, 8, 7]
        indexes = await collection.index_information()
        assert any(info.get("unique") for info in indexes.values())
    finally:
        await collection.drop()
        await client.close()


async def test_redis_set_and_get() -> None:
    redis = Redis.from_url(STACK.redis_url)
    key = f"smoke:{uuid.uuid4().hex}"
    try:
        await redis.set(key, "value", ex=60)
        assert await redis.get(key) == b"value"
        assert 0 < await redis.ttl(key) <= 60
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_span_sent_to_the_collector_is_readable_from_jaeger() -> None:
    service = f"smoke-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=STACK.otlp_grpc, insecure=True))
    )
    tracer = provider.get_tracer("smoke")
    with tracer.start_as_current_span("smoke.parent") as parent:
        parent.set_attribute("smoke.id", service)
        with tracer.start_as_current_span("smoke.child"):
            pass
    trace_id = format(parent.get_span_context().trace_id, "032x")
    provider.shutdown()

    async with httpx.AsyncClient(base_url=STACK.jaeger_query, timeout=5) as http:

        async def trace_in_jaeger() -> dict[str, Any] | None:
            response = await http.get(f"/api/traces/{trace_id}")
            if response.status_code != 200:
                return None
            data: list[dict[str, Any]] = response.json().get("data") or []
            return data[0] if data and len(data[0]["spans"]) == 2 else None

        found = await eventually(trace_in_jaeger, timeout_s=30, what="trace visible in Jaeger")
        services = await http.get("/api/services")
    names = {span["operationName"] for span in found["spans"]}
    assert names == {"smoke.parent", "smoke.child"}
    assert service in services.json()["data"]
    child = next(s for s in found["spans"] if s["operationName"] == "smoke.child")
    assert child["references"][0]["spanID"] == format(parent.get_span_context().span_id, "016x")


async def test_collector_is_healthy_and_exposes_prometheus_metrics() -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        health = await http.get(STACK.collector_health + "/status")
        metrics = await http.get(STACK.collector_metrics)
    assert health.status_code == 200
    assert metrics.status_code == 200
    assert "text/plain" in metrics.headers["content-type"]
