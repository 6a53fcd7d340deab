"""The one place where errors become HTTP responses: ``{"detail": ...}`` with the right status.

Domain exceptions map by type, and so do ``integr8scode_auth``'s, once turned into this service's
own (``from_auth``); invalid input is a 422 (malformed JSON 400) with a message a
person can act on; anything unexpected is a 500 (a bug, logged with its stack trace)."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from integr8scode_auth import AccountStoreUnavailableError, AuthError, NotAdminError
from integr8scode_event_replay.domain.errors import (
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    ReplayError,
    SessionNotFoundError,
    StoreUnavailableError,
    UnauthorizedError,
)
from integr8scode_telemetry import install_request_error_handlers

STATUS_BY_ERROR: dict[type[ReplayError], int] = {
    SessionNotFoundError: status.HTTP_404_NOT_FOUND,
    InvalidTransitionError: status.HTTP_409_CONFLICT,
    UnauthorizedError: status.HTTP_401_UNAUTHORIZED,
    ForbiddenError: status.HTTP_403_FORBIDDEN,
    InvalidRequestError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    StoreUnavailableError: status.HTTP_503_SERVICE_UNAVAILABLE,
}
RETRY_AFTER_S = 1
ADMIN_ONLY = "replay sessions need the admin role"


def status_for(exc: ReplayError) -> int:
    for cls, code in STATUS_BY_ERROR.items():
        if isinstance(exc, cls):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def headers_for(exc: ReplayError) -> dict[str, str]:
    if isinstance(exc, UnauthorizedError):
        challenge = 'Bearer error="invalid_token"' if exc.invalid_token else "Bearer"
        return {"WWW-Authenticate": challenge}
    if isinstance(exc, StoreUnavailableError):
        return {"Retry-After": str(RETRY_AFTER_S)}
    return {}


def from_auth(exc: AuthError) -> ReplayError:
    """The admin check's verdict as this service's error: the lib's message, but a 403 names
    this API; anything else the lib refuses is a token that no longer counts (401)."""
    if isinstance(exc, NotAdminError):
        return ForbiddenError(ADMIN_ONLY)
    if isinstance(exc, AccountStoreUnavailableError):
        return StoreUnavailableError(exc.detail)
    return UnauthorizedError(exc.detail, invalid_token=True)


async def _replay_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReplayError)  # noqa: S101 - registered for ReplayError only
    code = status_for(exc)
    detail = "the session store is unavailable; try again" if code == 503 else exc.detail
    return JSONResponse({"detail": detail}, code, headers=headers_for(exc))


async def _auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)  # noqa: S101 - registered for AuthError only
    return await _replay_error(request, from_auth(exc))


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on ``app``."""
    app.add_exception_handler(ReplayError, _replay_error)
    app.add_exception_handler(AuthError, _auth_error)
    install_request_error_handlers(app)
