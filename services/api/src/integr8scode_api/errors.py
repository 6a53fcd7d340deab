"""The one place where errors become HTTP responses: ``{"detail": ...}`` with the right status.

Domain exceptions map by type; bad input is always a 4xx with a message a person can act on
(malformed JSON 400, invalid fields 422); anything unexpected is a 500 (a bug, logged by the
server with its stack trace)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from integr8scode_api.domain.errors import (
    ApiError,
    Conflict,
    DependencyUnavailable,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from integr8scode_api.middleware import rate_limit_headers

STATUS_BY_ERROR: dict[type[ApiError], int] = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    Unauthorized: status.HTTP_401_UNAUTHORIZED,
    Forbidden: status.HTTP_403_FORBIDDEN,
    ValidationFailed: status.HTTP_422_UNPROCESSABLE_CONTENT,
    RateLimited: status.HTTP_429_TOO_MANY_REQUESTS,
    DependencyUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}
DEPENDENCY_RETRY_AFTER_S = 1


def status_for(exc: ApiError) -> int:
    for cls, code in STATUS_BY_ERROR.items():  # the classes don't derive from one another
        if isinstance(exc, cls):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def headers_for(exc: ApiError) -> dict[str, str]:
    if isinstance(exc, Unauthorized):
        challenge = 'Bearer error="invalid_token"' if exc.invalid_token else "Bearer"
        return {"WWW-Authenticate": challenge}
    if isinstance(exc, RateLimited):
        return rate_limit_headers(exc.decision)
    if isinstance(exc, DependencyUnavailable):
        return {"Retry-After": str(DEPENDENCY_RETRY_AFTER_S)}
    return {}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
    return JSONResponse({"detail": exc.detail}, status_for(exc), headers=headers_for(exc))


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = list(exc.errors())
    malformed = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        reason = (malformed.get("ctx") or {}).get("error", "not valid JSON")
        position = malformed["loc"][-1] if len(malformed.get("loc", ())) > 1 else "?"
        return JSONResponse(
            {"detail": f"malformed JSON body: {reason} (at character {position})"},
            status.HTTP_400_BAD_REQUEST,
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
    return JSONResponse(
        {"detail": "internal server error"},
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
