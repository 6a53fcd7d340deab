"""The notifier's own exceptions; adapters translate infrastructure errors into these."""

from __future__ import annotations


class NotifierError(Exception):
    """Base of the notifier's errors."""


class StoreUnavailableError(NotifierError):
    """Mongo did not answer; the consumer runner retries the message (then dead-letters it)."""


class DeliveryFailedError(NotifierError):
    """At least one channel still failed after its in-process retries (a 5xx, 429, timeout or
    connection error). Raised out of the handler so the message is dead-lettered at once (the
    runner does not multiply the delivery retries) and the DLQ processor retries it later; the
    channels that were delivered are skipped then."""


class TargetRefusedError(NotifierError):
    """The target resolves to an address the notifier may not call (loopback, private,
    link-local, ...): a permanent failure, recorded as ``refused``."""


class ResolutionError(NotifierError):
    """The target's host name did not resolve. ``permanent`` when the name does not exist."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class SecretUnavailableError(NotifierError):
    """A channel's stored credential can't be opened (sealed under a key id the notifier's ring
    lacks, or altered): the delivery fails permanently, recorded with this message (which names
    the field and the key id, never the value)."""
