"""Every answer of 400 or more becomes one exception of the hierarchy, with what it needs."""

from __future__ import annotations

import httpx
import pytest

from integr8scode_client import (
    ApiError,
    AsyncClient,
    Conflict,
    Invalid,
    NotFound,
    NotSupported,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from integr8scode_client.errors import error_from_response


def _answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> ApiError:
    request = httpx.Request("GET", "http://api/api/v1/executions/x")
    return error_from_response(httpx.Response(status, json=body, headers=headers, request=request))


def test_401_is_unauthorized_with_the_detail() -> None:
    error = _answer(401, {"detail": "token expired"})
    assert type(error) is Unauthorized
    assert (error.status, error.detail) == (401, "token expired")


def test_404_of_an_execution_is_not_found_and_of_a_missing_route_is_not_supported() -> None:
    missing = _answer(404, {"detail": "execution x not found"})
    assert type(missing) is NotFound
    route = _answer(404, {"detail": "Not Found"})
    assert type(route) is NotSupported
    assert isinstance(route, NotFound)  # "skip if 404" code catches both
    assert "GET /api/v1/executions/x" in route.detail
    assert type(_answer(405, {"detail": "Method Not Allowed"})) is NotSupported


def test_409_is_conflict() -> None:
    assert type(_answer(409, {"detail": "already ended"})) is Conflict


def test_422_names_the_fields_in_the_apis_shape() -> None:
    error = _answer(
        422,
        {
            "detail": "limits.memory_mb: too high",
            "errors": [
                {"field": "limits.memory_mb", "message": "at most 512"},
                {"field": "stdin", "message": "too long"},
            ],
        },
    )
    assert isinstance(error, Invalid)
    assert error.field == "limits.memory_mb"
    assert error.errors == [("limits.memory_mb", "at most 512"), ("stdin", "too long")]
    assert error.detail == "limits.memory_mb: too high"


def test_422_in_fastapis_own_shape_still_names_the_field() -> None:
    error = _answer(
        422, {"detail": [{"loc": ["body", "limits", "timeout_s"], "msg": "must be > 0"}]}
    )
    assert isinstance(error, Invalid)
    assert error.field == "limits.timeout_s"
    assert error.detail == "limits.timeout_s: must be > 0"


def test_400_is_invalid_without_a_field() -> None:
    error = _answer(400, {"detail": "malformed JSON at line 1"})
    assert isinstance(error, Invalid)
    assert error.field is None


def test_429_carries_retry_after() -> None:
    error = _answer(429, {"detail": "rate limit 'execute' exceeded"}, {"Retry-After": "7"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0
    no_header = _answer(429, {"detail": "slow down"})
    assert isinstance(no_header, RateLimited)
    assert no_header.retry_after is None


def test_5xx_is_unavailable_and_a_non_json_body_is_kept_short() -> None:
    error = _answer(503, {"detail": "broker down"}, {"Retry-After": "2"})
    assert isinstance(error, Unavailable)
    assert (error.status, error.retry_after) == (503, 2.0)
    request = httpx.Request("GET", "http://api/x")
    html = error_from_response(
        httpx.Response(502, text="<h1>bad gateway</h1>" * 50, request=request)
    )
    assert isinstance(html, Unavailable)
    assert len(html.detail) <= 200


async def test_a_refused_connection_is_unavailable_with_status_0() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with AsyncClient("http://api:1", "t", transport=httpx.MockTransport(refuse)) as api:
        with pytest.raises(Unavailable) as caught:
            await api.runtimes()
    assert caught.value.status == 0
    assert "cannot reach the API at http://api:1" in caught.value.detail
    assert "Connection refused" in caught.value.detail


async def test_a_timeout_is_unavailable_too() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with AsyncClient("http://api", "t", transport=httpx.MockTransport(slow)) as api:
        with pytest.raises(Unavailable, match="no answer from the API"):
            await api.get("e-1")
