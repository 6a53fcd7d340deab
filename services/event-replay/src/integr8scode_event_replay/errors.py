"""The one place where errors become HTTP responses: ``{"detail": ...}`` with the right status.

Domain exceptions map by type; invalid input is a 422 (malformed JSON 400) with a message a
person can act on; anything unexpected is a 500 (a bug, logged with its stack trace)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from integr8scode_event_replay.domain.errors import (
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    ReplayError,
    SessionNotFoundError,
    StoreUnavailableError,
    UnauthorizedError,
)

STATUS_BY_ERROR: dict[type[ReplayError], int] = {
    SessionNotFoundError: status.HTTP_404_NOT_FOUND,
    InvalidTransitionError: status.HTTP_409_CONFLICT,
    UnauthorizedError: status.HTTP_401_UNAUTHORIZED,
    ForbiddenError: status.HTTP_403_FORBIDDEN,
    InvalidRequestError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    StoreUnavailableError: status.HTTP_503_SERVICE_UNAVAILABLE,
}
RETRY_AFTER_S = 1


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


async def _replay_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReplayError)  # noqa: S101 - registered for ReplayError only
    code = status_for(exc)
    detail = "the session store is unavailable; try again" if code == 503 else exc.detail
    return JSONResponse({"detail": detail}, code, headers=headers_for(exc))


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def _message(error: dict[str, Any]) -> str:
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = list(exc.errors())
    malformed = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        reason = (malformed.get("ctx") or {}).get("error", "not valid JSON")
        return JSONResponse(
            {"detail": f"malformed JSON body: {reason}"}, status.HTTP_400_BAD_REQUEST
        )
    summary = "; ".join(f"{_field(e['loc'])}: {_message(e)}" for e in errors)
    return JSONResponse(
        {
            "detail": f"invalid request: {summary}",
            "errors": [{"field": _field(e["loc"]), "message": _message(e)} for e in errors],
        },
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises the exception after this answer, so the server still logs it.
    return JSONResponse({"detail": "internal server error"}, status.HTTP_500_INTERNAL_SERVER_ERROR)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on ``app``."""
    app.add_exception_handler(ReplayError, _replay_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
