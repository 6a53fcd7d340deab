"""Integr8sCode events: envelope, topics, publisher, consumer runner, dead letters, event store.

The public surface is re-exported here; see the README for how the pieces fit.
"""

from integr8scode_events.codec import decode_event
from integr8scode_events.consumer import ConsumerRunner
from integr8scode_events.envelope import EventEnvelope, ProducerInfo
from integr8scode_events.errors import (
    AlreadyBeingProcessedError,
    BrokerUnavailableError,
    DecodeError,
    EventsError,
    PublishError,
    PublishUncertainError,
    UnknownEventTypeError,
)
from integr8scode_events.event_store import EventStoreWriter, stored_document
from integr8scode_events.events import (
    EVENT_TYPES,
    TERMINAL_EXECUTION_EVENTS,
    ExecutionCancelled,
    ExecutionCancelRequested,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionRequested,
    ExecutionStarted,
    ExecutionTimedOut,
    NotificationFailed,
    NotificationSent,
)
from integr8scode_events.handlers import BatchHandler, HandlerRegistry, MessageContext, RawMessage
from integr8scode_events.idempotency import Claim, MongoProcessedEvents, idempotent
from integr8scode_events.publisher import EventPublisher, PublishedRecord
from integr8scode_events.retry_policy import RetryPolicy
from integr8scode_events.settings import KafkaSettings, MongoSettings
from integr8scode_events.supervisor import Supervisor
from integr8scode_events.topics import ALL_TOPICS, DEAD_LETTER_QUEUE, TopicSpec, ensure_topics
from integr8scode_events.trace_context import StoredTraceContext

__all__ = [
    "ALL_TOPICS",
    "DEAD_LETTER_QUEUE",
    "EVENT_TYPES",
    "TERMINAL_EXECUTION_EVENTS",
    "AlreadyBeingProcessedError",
    "BatchHandler",
    "BrokerUnavailableError",
    "Claim",
    "ConsumerRunner",
    "DecodeError",
    "EventEnvelope",
    "EventPublisher",
    "EventStoreWriter",
    "EventsError",
    "ExecutionCancelRequested",
    "ExecutionCancelled",
    "ExecutionCompleted",
    "ExecutionFailed",
    "ExecutionRequested",
    "ExecutionStarted",
    "ExecutionTimedOut",
    "HandlerRegistry",
    "KafkaSettings",
    "MessageContext",
    "MongoProcessedEvents",
    "MongoSettings",
    "NotificationFailed",
    "NotificationSent",
    "ProducerInfo",
    "PublishError",
    "PublishUncertainError",
    "PublishedRecord",
    "RawMessage",
    "RetryPolicy",
    "StoredTraceContext",
    "Supervisor",
    "TopicSpec",
    "UnknownEventTypeError",
    "decode_event",
    "ensure_topics",
    "idempotent",
    "stored_document",
]
