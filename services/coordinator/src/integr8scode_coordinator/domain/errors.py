"""The coordinator's own exceptions; adapters translate infrastructure errors into these."""

from __future__ import annotations


class CoordinatorError(Exception):
    """Base of the coordinator's errors."""


class StoreUnavailableError(CoordinatorError):
    """Mongo did not answer; the message is retried (and dead-lettered if it keeps failing)."""


class InvalidRequestError(CoordinatorError):
    """The request can't be run (unknown runtime, limits above the maximum)."""
