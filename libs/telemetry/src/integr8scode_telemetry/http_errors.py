"""The request errors every service answers alike (DESIGN.md §3): ``{"detail": ...}``.

A body that isn't JSON is a 400 naming where it broke; invalid fields are a 422 naming each
field, with ``errors`` listing them; a 405's ``Allow`` names every method the path answers;
anything unexpected is a 500 without internals (Starlette
re-raises it after the answer, so the server still logs the stack trace). A service maps its
own domain errors itself and calls ``install_request_error_handlers`` for the rest, like it
mounts ``build_health_router``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

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


_PARAMETER = re.compile(r"\\\{([^}:]+)(:path)?\\\}")


def _path_pattern(template: str) -> re.Pattern[str]:
    """``/api/v1/x/{id}`` as a regular expression (``{p:path}`` may hold slashes)."""

    def parameter(found: re.Match[str]) -> str:
        return ".+" if found.group(2) else "[^/]+"

    return re.compile(f"^{_PARAMETER.sub(parameter, re.escape(template))}$")


def _method_table(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(
        app.state, "integr8scode_method_table", None
    )
    if table is None:
        table = [
            (_path_pattern(path), frozenset(m.upper() for m in operations if m != "parameters"))
            for path, operations in app.openapi().get("paths", {}).items()
        ]
        app.state.integr8scode_method_table = table
    return table


def allowed_methods(request: Request, declared: str = "") -> list[str]:
    """Every method the app answers on this path: the documented operations whose path
    template matches, plus what Starlette named (FastAPI makes one route per method, and
    Starlette's 405 names only the first route whose path matched)."""
    methods = {m.strip().upper() for m in declared.split(",") if m.strip()}
    for pattern, operations in _method_table(request.app):
        if pattern.match(request.url.path):
            methods |= operations
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = allowed_methods(request, (exc.headers or {}).get("Allow", ""))
        if allowed:
            exc = StarletteHTTPException(
                exc.status_code,
                exc.detail,
                headers={**(exc.headers or {}), "Allow": ", ".join(allowed)},
            )
    return await http_exception_handler(request, exc)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": "internal server error"}, status.HTTP_500_INTERNAL_SERVER_ERROR)


_ERROR_BODY = {
    "title": "ErrorBody",
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string", "title": "Detail"}},
}
_FIELD_ERROR = {
    "title": "FieldError",
    "type": "object",
    "required": ["field", "message"],
    "properties": {
        "field": {"type": "string", "title": "Field", "examples": ["limits.memory_mb"]},
        "message": {"type": "string", "title": "Message"},
    },
}
_VALIDATION_BODY = {
    "title": "RequestValidationErrorBody",
    "type": "object",
    "required": ["detail", "errors"],
    "properties": {
        "detail": {
            "type": "string",
            "title": "Detail",
            "description": "every problem, in one line",
        },
        "errors": {
            "type": "array",
            "title": "Errors",
            "items": {"$ref": "#/components/schemas/FieldError"},
        },
    },
}
_MALFORMED = {
    "description": "Malformed JSON body (the detail says where it broke)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


def _document_request_errors(app: FastAPI) -> None:
    """Make the OpenAPI document say what these handlers answer: FastAPI's default 422 schema
    (a list of pydantic errors under ``detail``) is not it, and the 400 isn't listed at all."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = _VALIDATION_BODY
            schemas.pop("ValidationError", None)
            schemas["FieldError"] = _FIELD_ERROR
        schemas.setdefault("ErrorBody", _ERROR_BODY)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault("400", _MALFORMED)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_request_error_handlers(app: FastAPI) -> None:
    """Answer invalid requests with a 400/422 that says what is wrong, and bugs with a 500;
    the OpenAPI document describes those answers as they are."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    _document_request_errors(app)
