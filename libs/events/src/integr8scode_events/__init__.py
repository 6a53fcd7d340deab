"""Integr8sCode events, the contract: envelope, typed events and payloads, codec, errors, header
and topic names, span and attribute names.

Importing it loads neither aiokafka nor pymongo (an import-linter contract and the root
``tests/unit/test_light_imports.py`` hold it to that): domain code may depend on it. The Kafka
side (publisher, consumer runner, dead letters, idempotency, probe, topic creation) is
``integr8scode_events.kafka``. See the README for how the pieces fit.
"""

from integr8scode_events.codec import decode_event
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
from integr8scode_events.topics import ALL_TOPICS, DEAD_LETTER_QUEUE, PublishedRecord, TopicSpec
from integr8scode_events.trace_context import StoredTraceContext

__all__ = [
    "ALL_TOPICS",
    "DEAD_LETTER_QUEUE",
    "EVENT_TYPES",
    "TERMINAL_EXECUTION_EVENTS",
    "AlreadyBeingProcessedError",
    "BrokerUnavailableError",
    "DecodeError",
    "EventEnvelope",
    "EventsError",
    "ExecutionCancelRequested",
    "ExecutionCancelled",
    "ExecutionCompleted",
    "ExecutionFailed",
    "ExecutionRequested",
    "ExecutionStarted",
    "ExecutionTimedOut",
    "NotificationFailed",
    "NotificationSent",
    "ProducerInfo",
    "PublishError",
    "PublishUncertainError",
    "PublishedRecord",
    "StoredTraceContext",
    "TopicSpec",
    "UnknownEventTypeError",
    "decode_event",
]
