"""The request errors every service answers alike (DESIGN.md §3): ``{"detail": ...}``.

A body that isn't JSON is a 400 naming where it broke; invalid fields are a 422 naming each
field, with ``errors`` listing them; anything unexpected is a 500 without internals (Starlette
re-raises it after the answer, so the server still logs the stack trace). A service maps its
own domain errors itself and calls ``install_request_error_handlers`` for the rest, like it
mounts ``build_health_router``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:] or parts
    return ".".join(parts)


def _message(error: dict[str, Any]) -> str:
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
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
    return JSONResponse({"detail": "internal server error"}, status.HTTP_500_INTERNAL_SERVER_ERROR)


def install_request_error_handlers(app: FastAPI) -> None:
    """Answer invalid requests with a 400/422 that says what is wrong, and bugs with a 500."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
