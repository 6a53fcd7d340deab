"""One exception hierarchy for everything the API (or the way to it) can answer.

``error_from_response`` is the only place an HTTP status becomes an exception; transport
failures become ``Unavailable`` in the clients' send path.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx


class ApiError(Exception):
    """The API refused or failed a request: ``status`` (0 when no answer came) and the
    ``detail`` it gave."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class Unauthorized(ApiError):
    """401: no token, or an expired or revoked one."""


class NotFound(ApiError):
    """404: no such execution (or not yours), or a route this API doesn't have."""


class Conflict(ApiError):
    """409: the execution already ended, or an Idempotency-Key still waits for its outcome."""


class Invalid(ApiError):
    """400 or 422: the request is wrong; ``field`` names the first field the API blamed
    (dotted, e.g. ``limits.memory_mb``) and ``errors`` lists every ``(field, message)``."""

    def __init__(
        self, status: int, detail: str, errors: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(status, detail)
        self.errors = errors or []

    @property
    def field(self) -> str | None:
        return self.errors[0][0] if self.errors else None


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` is the wait the API asked for, in seconds."""

    def __init__(self, status: int, detail: str, retry_after: float | None) -> None:
        super().__init__(status, detail)
        self.retry_after = retry_after


class Unavailable(ApiError):
    """The API can't be reached (``status`` 0) or answered a 5xx; ``retry_after`` when it
    said when to try again."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(status, detail)
        self.retry_after = retry_after


class NotSupported(NotFound):
    """The API this client talks to has no such feature (an older server: the route is
    missing (404, 405) or it ignores the parameter)."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: the API never sends one
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _field_errors(body: Any) -> list[tuple[str, str]]:
    """The API's ``errors: [{field, message}]``, or FastAPI's ``detail: [{loc, msg}]``."""
    if not isinstance(body, dict):
        return []
    found: list[tuple[str, str]] = []
    for item in body.get("errors") or []:
        if isinstance(item, dict) and "field" in item:
            found.append((str(item["field"]), str(item.get("message", ""))))
    detail = body.get("detail")
    if not found and isinstance(detail, list):
        for item in detail:
            if isinstance(item, dict):
                loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
                found.append((".".join(loc), str(item.get("msg", ""))))
    return found


def _detail(response: httpx.Response, body: Any, errors: list[tuple[str, str]]) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    if errors:
        return "; ".join(f"{field}: {message}" if field else message for field, message in errors)
    text = response.text.strip()
    return text[:200] if text else f"HTTP {response.status_code} {response.reason_phrase}"


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an answer of 400 or more."""
    status = response.status_code
    body = _body(response)
    errors = _field_errors(body)
    detail = _detail(response, body, errors)
    if status in (404, 405) and detail in ("Not Found", "Method Not Allowed"):
        # The framework's own answer for a route it doesn't have: an older API.
        route = f"{response.request.method} {response.url.path}"
        return NotSupported(status, f"this API has no {route} ({detail.lower()})")
    if status in (400, 422):
        return Invalid(status, detail, errors)
    if status == 429:
        return RateLimited(status, detail, _retry_after(response))
    if status >= 500:
        return Unavailable(status, detail, _retry_after(response))
    return _BY_STATUS.get(status, ApiError)(status, detail)


_BY_STATUS: dict[int, type[ApiError]] = {401: Unauthorized, 404: NotFound, 409: Conflict}


class WaitTimeout(TimeoutError):
    """Waiting for an execution's end took longer than the deadline; the execution goes on."""

    def __init__(self, execution_id: str, status: str | None, timeout_s: float) -> None:
        super().__init__(
            f"execution {execution_id} still {status or 'pending'} after {timeout_s:g} s"
        )
        self.execution_id = execution_id
        self.status = status


__all__ = [
    "ApiError",
    "Conflict",
    "Invalid",
    "NotFound",
    "NotSupported",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
    "error_from_response",
]
