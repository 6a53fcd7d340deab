"""The one place where errors become HTTP responses: ``{"detail": ...}`` with the right status.

Domain exceptions map by type, and so do ``integr8scode_auth``'s, once turned into this service's
own (``from_auth``); bad input is a 4xx a person can act on (malformed JSON 400,
invalid fields 422); anything unexpected is a 500 (a bug, logged with its stack trace)."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from integr8scode_auth import AccountStoreUnavailableError, AuthError, NotAdminError
from integr8scode_dlq_processor.domain.errors import (
    ConflictError,
    DlqError,
    ForbiddenError,
    NotFoundError,
    StoreUnavailableError,
    UnauthorizedError,
)
from integr8scode_telemetry import install_request_error_handlers

STATUS_BY_ERROR: dict[type[DlqError], int] = {
    NotFoundError: status.HTTP_404_NOT_FOUND,
    ConflictError: status.HTTP_409_CONFLICT,
    UnauthorizedError: status.HTTP_401_UNAUTHORIZED,
    ForbiddenError: status.HTTP_403_FORBIDDEN,
    StoreUnavailableError: status.HTTP_503_SERVICE_UNAVAILABLE,
}
RETRY_AFTER_S = 1
ADMIN_ONLY = "the dead-letter API needs the admin role"


def status_for(exc: DlqError) -> int:
    for cls, code in STATUS_BY_ERROR.items():
        if isinstance(exc, cls):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def headers_for(exc: DlqError) -> dict[str, str]:
    if isinstance(exc, UnauthorizedError):
        return {
            "WWW-Authenticate": 'Bearer error="invalid_token"' if exc.invalid_token else "Bearer"
        }
    if isinstance(exc, StoreUnavailableError):
        return {"Retry-After": str(RETRY_AFTER_S)}
    return {}


def from_auth(exc: AuthError) -> DlqError:
    """The admin check's verdict as this service's error: the lib's message, but a 403 names
    this API; anything else the lib refuses is a token that no longer counts (401)."""
    if isinstance(exc, NotAdminError):
        return ForbiddenError(ADMIN_ONLY)
    if isinstance(exc, AccountStoreUnavailableError):
        return StoreUnavailableError(exc.detail)
    return UnauthorizedError(exc.detail, invalid_token=True)


async def _dlq_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DlqError)  # noqa: S101 - registered for DlqError only
    return JSONResponse({"detail": exc.detail}, status_for(exc), headers=headers_for(exc))


async def _auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)  # noqa: S101 - registered for AuthError only
    return await _dlq_error(request, from_auth(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DlqError, _dlq_error)
    app.add_exception_handler(AuthError, _auth_error)
    install_request_error_handlers(app)
