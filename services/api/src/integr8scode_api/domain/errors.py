"""The API's own exceptions. Adapters translate infrastructure errors into these; ``errors.py``
at the edge maps each to one HTTP status, so a route never builds an error response itself."""

from __future__ import annotations


class ApiError(Exception):
    """Base of the API's errors; ``detail`` is what the client reads."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(ApiError):
    """The thing asked for does not exist, or the caller may not know that it does."""


class ConflictError(ApiError):
    """The request clashes with existing state (a taken username)."""


class InProgressError(ConflictError):
    """The same request (same ``Idempotency-Key``) is still being handled; retry after
    ``retry_after_s`` for its outcome."""

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class UnauthorizedError(ApiError):
    """No credentials, or credentials that do not prove who the caller is. ``invalid_token``
    says it was the bearer token that failed (RFC 6750 ``error="invalid_token"``)."""

    def __init__(self, detail: str, *, invalid_token: bool = False) -> None:
        super().__init__(detail)
        self.invalid_token = invalid_token


class ForbiddenError(ApiError):
    """The caller is known but may not do this."""


class ValidationFailedError(ApiError, ValueError):
    """Input that breaks a domain rule. A ``ValueError`` too, so the same rule raised inside a
    pydantic validator of a request model becomes an ordinary 422 validation error."""


class TooManyAttemptsError(ApiError):
    """Too many failed logins for one account; try again after ``retry_after_s``."""

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class DependencyUnavailableError(ApiError):
    """A backing service (Mongo, Redis) did not answer; the request may succeed later."""

    def __init__(self, detail: str, *, dependency: str | None = None) -> None:
        super().__init__(detail)
        self.dependency = dependency
