"""The one mapping from errors to HTTP answers; bad input is never a 5xx."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from integr8scode_api.domain.errors import (
    ApiError,
    ConflictError,
    DependencyUnavailableError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    ValidationFailedError,
)
from integr8scode_api.domain.rate_limit import Algorithm, RateLimitDecision, RateLimitedError
from integr8scode_api.errors import install_error_handlers, status_for

if TYPE_CHECKING:
    from conftest import Harness

DENIED = RateLimitDecision(
    allowed=False,
    limit=5,
    remaining=0,
    reset_after_s=12.2,
    retry_after_s=2.1,
    algorithm=Algorithm.TOKEN_BUCKET,
    rule="execute",
    window_s=3.0,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("x"), 404),
        (ConflictError("x"), 409),
        (UnauthorizedError("x"), 401),
        (ForbiddenError("x"), 403),
        (ValidationFailedError("x"), 422),
        (RateLimitedError(DENIED), 429),
        (DependencyUnavailableError("x"), 503),
        (ApiError("x"), 500),
    ],
)
def test_each_domain_error_has_its_status(error: ApiError, status: int) -> None:
    assert status_for(error) == status


def _raising(error: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise error

    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def test_rate_limited_answer_has_retry_after_and_limit_headers() -> None:
    response = _raising(RateLimitedError(DENIED)).get("/boom")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"  # 2.1 s rounded up
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Reset"] == "13"
    assert "rate limit 'execute' exceeded" in response.json()["detail"]


def test_an_unexpected_exception_is_a_json_500() -> None:
    response = _raising(RuntimeError("secret internals")).get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}


def test_malformed_json_is_400_with_the_reason(harness: Harness) -> None:
    response = harness.client.post(
        "/api/v1/auth/login",
        content=b'{"username": "alice", "password": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed JSON body: ")


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b'"just a string"', b"{}", b'{"username": 5, "password": null}'],
)
def test_wrong_shapes_are_422(harness: Harness, body: bytes) -> None:
    response = harness.client.post(
        "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: ")


def test_a_missing_field_is_named(harness: Harness) -> None:
    response = harness.client.post("/api/v1/auth/register", json={"username": "alice"})
    assert response.status_code == 422
    assert response.json()["detail"] == "invalid request: password: Field required"


def test_unknown_routes_stay_json_404(harness: Harness) -> None:
    response = harness.client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
