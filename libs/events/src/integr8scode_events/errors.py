"""The events library's own exceptions: infrastructure errors are translated into these once."""

from __future__ import annotations


class EventsError(Exception):
    """Base of every error this library raises."""


class BrokerUnavailableError(EventsError):
    """Kafka did not take the request (down, unreachable, or timed out)."""


class PublishError(BrokerUnavailableError):
    """A message was not acknowledged by the broker; the caller must not assume it was sent.
    Raised as such only when the message never reached the producer: it was not sent."""


class PublishUncertainError(PublishError):
    """The producer took the message but no acknowledgement came in time (or its delivery
    failed after it was handed over): it may still be, or have been, written to the topic.
    The caller must neither assume it was sent nor that it wasn't; sending the same event again
    is how to find out, when its consumers are idempotent."""


class DecodeError(EventsError):
    """A message's bytes are not a valid envelope of a known event type."""


class UnknownEventTypeError(DecodeError):
    """The envelope names an event type this library does not know."""


class AlreadyBeingProcessedError(EventsError):
    """Another consumer holds the lease on this event; try again later."""
