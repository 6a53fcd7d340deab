"""The service's own exceptions. Adapters translate infrastructure errors into these; the HTTP
edge maps them to status codes in one place (``errors.py``)."""

from __future__ import annotations


class ReplayError(Exception):
    """Base of event-replay's errors; ``detail`` is what a caller may read."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequestError(ReplayError):
    """A session spec that can't be run (filters, target, speed or cap): 422."""


class SessionNotFoundError(ReplayError):
    """No session with that id: 404."""


class InvalidTransitionError(ReplayError):
    """Pause, resume or cancel from a state that does not allow it: 409."""


class UnauthorizedError(ReplayError):
    """No token, or one that does not verify: 401."""

    def __init__(self, detail: str, *, invalid_token: bool = False) -> None:
        super().__init__(detail)
        self.invalid_token = invalid_token


class ForbiddenError(ReplayError):
    """A valid token without the admin role: 403."""


class StoreUnavailableError(ReplayError):
    """Mongo did not answer: 503 at the edge; a running session retries later."""


class QueryTimeoutError(ReplayError):
    """A read of the event store ran past the time it was given (a dry run's budget)."""


class OwnershipLostError(ReplayError):
    """Another instance took the session over (this one's lease had run out)."""


class PublishFailedError(ReplayError):
    """The broker did not acknowledge a replayed message."""
