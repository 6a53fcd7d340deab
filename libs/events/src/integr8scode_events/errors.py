"""The events library's own exceptions: infrastructure errors are translated into these once."""

from __future__ import annotations


class EventsError(Exception):
    """Base of every error this library raises."""


class BrokerUnavailableError(EventsError):
    """Kafka did not take the request (down, unreachable, or timed out)."""


class PublishError(BrokerUnavailableError):
    """A message was not acknowledged by the broker; the caller must not assume it was sent."""


class DecodeError(EventsError):
    """A message's bytes are not a valid envelope of a known event type."""


class UnknownEventTypeError(DecodeError):
    """The envelope names an event type this library does not know."""


class AlreadyBeingProcessedError(EventsError):
    """Another consumer holds the lease on this event; try again later."""
