"""The one place where errors become HTTP responses: ``{"detail": ...}`` with the right status.

Domain exceptions map by type; bad input is always a 4xx with a message a person can act on
(malformed JSON 400, invalid fields 422); anything unexpected is a 500 (a bug, logged by the
server with its stack trace)."""

from __future__ import annotations

import math

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from integr8scode_api.domain.errors import (
    ApiError,
    ConflictError,
    DependencyUnavailableError,
    ForbiddenError,
    InProgressError,
    NotFoundError,
    TooManyAttemptsError,
    UnauthorizedError,
    ValidationFailedError,
)
from integr8scode_api.domain.rate_limit import RateLimitedError
from integr8scode_api.middleware import rate_limit_headers
from integr8scode_telemetry import install_request_error_handlers

STATUS_BY_ERROR: dict[type[ApiError], int] = {
    NotFoundError: status.HTTP_404_NOT_FOUND,
    ConflictError: status.HTTP_409_CONFLICT,
    UnauthorizedError: status.HTTP_401_UNAUTHORIZED,
    ForbiddenError: status.HTTP_403_FORBIDDEN,
    ValidationFailedError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    RateLimitedError: status.HTTP_429_TOO_MANY_REQUESTS,
    TooManyAttemptsError: status.HTTP_429_TOO_MANY_REQUESTS,
    DependencyUnavailableError: status.HTTP_503_SERVICE_UNAVAILABLE,
}
DEPENDENCY_RETRY_AFTER_S = 1


def status_for(exc: ApiError) -> int:
    for cls, code in STATUS_BY_ERROR.items():  # the classes don't derive from one another
        if isinstance(exc, cls):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def headers_for(exc: ApiError) -> dict[str, str]:
    if isinstance(exc, UnauthorizedError):
        challenge = 'Bearer error="invalid_token"' if exc.invalid_token else "Bearer"
        return {"WWW-Authenticate": challenge}
    if isinstance(exc, RateLimitedError):
        return rate_limit_headers(exc.decision)
    if isinstance(exc, DependencyUnavailableError):
        return {"Retry-After": str(DEPENDENCY_RETRY_AFTER_S)}
    if isinstance(exc, TooManyAttemptsError):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    if isinstance(exc, InProgressError):
        return {"Retry-After": str(exc.retry_after_s)}
    return {}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
    return JSONResponse({"detail": exc.detail}, status_for(exc), headers=headers_for(exc))


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    install_request_error_handlers(app)
