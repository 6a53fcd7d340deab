"""The service's own exceptions. Adapters translate infrastructure errors into these; the HTTP
edge (``errors.py``) maps each to one status code, the consumer lets the runner retry them."""

from __future__ import annotations


class DlqError(Exception):
    """Base of the service's errors; ``detail`` is what an API client reads."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DlqError):  # noqa: N818 - the names read as the HTTP outcome they become
    """No dead letter with that id."""


class Conflict(DlqError):  # noqa: N818
    """The action does not fit the record's current state (discarding a discarded record)."""


class Unauthorized(DlqError):  # noqa: N818
    """No bearer token, or one that does not verify."""

    def __init__(self, detail: str, *, invalid_token: bool = False) -> None:
        super().__init__(detail)
        self.invalid_token = invalid_token


class Forbidden(DlqError):  # noqa: N818
    """A valid token without the admin role."""


class StoreUnavailable(DlqError):  # noqa: N818
    """Mongo did not answer; the consumer retries the message, the API answers 503."""


class RepublishFailed(DlqError):  # noqa: N818
    """Kafka did not acknowledge a retry; the attempt is rescheduled (it may still arrive)."""


class StaleRecord(DlqError):  # noqa: N818
    """A scheduler's transition no longer applies: the record moved on meanwhile (discarded by
    an admin, or the attempt was already made). The scheduler drops its attempt."""


class ConcurrentUpdate(StoreUnavailable):
    """The record kept changing under us; the operation may be repeated."""
