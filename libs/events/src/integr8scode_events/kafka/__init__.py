"""Integr8sCode events, the Kafka side: publisher, consumer runner (typed dispatch, batches,
partition workers, in-process retries, dead letters), idempotent handling, the readiness probe
and topic creation. Built on aiokafka (and pymongo for the idempotency ledger); the contract
it carries is the package above, ``integr8scode_events``."""

from integr8scode_events.kafka.consumer import ConsumerRunner
from integr8scode_events.kafka.handlers import (
    BatchHandler,
    HandlerRegistry,
    MessageContext,
    RawMessage,
)
from integr8scode_events.kafka.idempotency import (
    Claim,
    MongoProcessedEvents,
    idempotency_key,
    idempotent,
)
from integr8scode_events.kafka.probe import KafkaProbe
from integr8scode_events.kafka.publisher import EventPublisher
from integr8scode_events.kafka.retry_policy import RetryPolicy
from integr8scode_events.kafka.settings import KafkaSettings
from integr8scode_events.kafka.topic_admin import create_missing_topics, ensure_topics

__all__ = [
    "BatchHandler",
    "Claim",
    "ConsumerRunner",
    "EventPublisher",
    "HandlerRegistry",
    "KafkaProbe",
    "KafkaSettings",
    "MessageContext",
    "MongoProcessedEvents",
    "RawMessage",
    "RetryPolicy",
    "create_missing_topics",
    "ensure_topics",
    "idempotency_key",
    "idempotent",
]
