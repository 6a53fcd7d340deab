"""The one place where errors become HTTP responses: ``{"detail": ...}`` with the right status.

Domain exceptions map by type; bad input is a 4xx a person can act on (malformed JSON 400,
invalid fields 422); anything unexpected is a 500 (a bug, logged with its stack trace)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from integr8scode_dlq_processor.domain.errors import (
    Conflict,
    DlqError,
    Forbidden,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)

STATUS_BY_ERROR: dict[type[DlqError], int] = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    Unauthorized: status.HTTP_401_UNAUTHORIZED,
    Forbidden: status.HTTP_403_FORBIDDEN,
    StoreUnavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}
RETRY_AFTER_S = 1


def status_for(exc: DlqError) -> int:
    for cls, code in STATUS_BY_ERROR.items():
        if isinstance(exc, cls):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def headers_for(exc: DlqError) -> dict[str, str]:
    if isinstance(exc, Unauthorized):
        return {
            "WWW-Authenticate": 'Bearer error="invalid_token"' if exc.invalid_token else "Bearer"
        }
    if isinstance(exc, StoreUnavailable):
        return {"Retry-After": str(RETRY_AFTER_S)}
    return {}


async def _dlq_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DlqError)  # noqa: S101 - registered for DlqError only
    return JSONResponse({"detail": exc.detail}, status_for(exc), headers=headers_for(exc))


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
    app.add_exception_handler(DlqError, _dlq_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
