"""The service's own exceptions. Adapters translate infrastructure errors into these; the HTTP
edge (``errors.py``) maps each to one status code, the consumer lets the runner retry them."""

from __future__ import annotations


class DlqError(Exception):
    """Base of the service's errors; ``detail`` is what an API client reads."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DlqError):
    """No dead letter with that id."""


class ConflictError(DlqError):
    """The action does not fit the record's current state (discarding a discarded record)."""


class UnauthorizedError(DlqError):
    """No bearer token, or one that does not verify."""

    def __init__(self, detail: str, *, invalid_token: bool = False) -> None:
        super().__init__(detail)
        self.invalid_token = invalid_token


class ForbiddenError(DlqError):
    """A valid token without the admin role."""


class StoreUnavailableError(DlqError):
    """Mongo did not answer; the consumer retries the message, the API answers 503."""


class RepublishFailedError(DlqError):
    """Kafka did not acknowledge a retry; the attempt is rescheduled (it may still arrive)."""


class StaleRecordError(DlqError):
    """A scheduler's transition no longer applies: the record moved on meanwhile (discarded by
    an admin, or the attempt was already made). The scheduler drops its attempt."""


class ConcurrentUpdateError(StoreUnavailableError):
    """The record kept changing under us; the operation may be repeated."""
