"""Bad input gets a clear 4xx with a message, never a 5xx."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.client import ApiUser, new_user
from tests.stack import local_stack


def _detail(response: httpx.Response) -> str:
    detail = response.json()["detail"]
    return detail if isinstance(detail, str) else str(detail)


async def test_unknown_language(user: ApiUser) -> None:
    response = await user.execute("print(1)", "cobol")
    assert response.status_code == 422
    assert "cobol" in _detail(response)


async def test_unknown_version(user: ApiUser) -> None:
    response = await user.execute("print(1)", "python", language_version="1.0")
    assert response.status_code == 422
    assert "1.0" in _detail(response)


async def test_oversized_script(user: ApiUser) -> None:
    response = await user.execute("#" * (512 * 1024))
    assert response.status_code == 422
    assert "bytes" in _detail(response)


async def test_limits_above_the_maximum(user: ApiUser) -> None:
    response = await user.execute("print(1)", limits={"timeout_s": 10_000, "memory_mb": 64})
    assert response.status_code == 422
    assert "timeout_s" in _detail(response)
    response = await user.execute("print(1)", limits={"timeout_s": 1, "memory_mb": 1_000_000})
    assert response.status_code == 422
    assert "memory_mb" in _detail(response)


async def test_missing_and_invalid_tokens(http: httpx.AsyncClient) -> None:
    body = {"script": "print(1)", "language": "python"}
    missing = await http.post("/api/v1/execute", json=body)
    invalid = await http.post(
        "/api/v1/execute", json=body, headers={"Authorization": "Bearer not-a-token"}
    )
    for response in (missing, invalid):
        assert response.status_code == 401
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
        assert _detail(response)


async def test_another_users_execution_is_not_found(http: httpx.AsyncClient, user: ApiUser) -> None:
    other = await new_user(http, "other")
    response = await user.execute("print(1)")
    execution_id = response.json()["execution_id"]
    for call in (
        other.http.get(f"/api/v1/executions/{execution_id}", headers=other.headers),
        other.http.post(f"/api/v1/executions/{execution_id}/cancel", headers=other.headers),
        other.http.get(f"/api/v1/executions/{execution_id}/events", headers=other.headers),
    ):
        answered = await call
        assert answered.status_code == 404
    await user.wait_terminal(execution_id)


async def test_malformed_json(user: ApiUser) -> None:
    response = await user.http.post(
        "/api/v1/execute",
        content=b'{"script": "print(1)", "language": ',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert _detail(response)


async def test_unknown_execution_and_bad_pagination(user: ApiUser) -> None:
    assert (await user.get("no-such-execution")).status_code == 404
    response = await user.http.get("/api/v1/executions?limit=0", headers=user.headers)
    assert response.status_code == 422


@pytest.mark.parametrize("path", ["/api/v1/executions", "/api/v1/notifications"])
@pytest.mark.parametrize("offset", ["9223372036854775808", "1000001", "-1"])
async def test_an_offset_out_of_range_is_a_422_naming_it(
    user: ApiUser, path: str, offset: str
) -> None:
    response = await user.http.get(path, params={"offset": offset}, headers=user.headers)
    assert response.status_code == 422, response.text
    assert "offset" in response.text
    deepest = await user.http.get(path, params={"offset": "1000000"}, headers=user.headers)
    assert deepest.status_code == 200, deepest.text
    assert deepest.json()["items"] == []


async def test_cancel_after_the_end_is_a_conflict(user: ApiUser) -> None:
    response = await user.execute("print(1)")
    execution_id = response.json()["execution_id"]
    await user.wait_terminal(execution_id)
    cancel = await user.http.post(f"/api/v1/executions/{execution_id}/cancel", headers=user.headers)
    assert cancel.status_code == 409


@pytest.mark.parametrize(
    ("username", "password", "why"),
    [
        ("weak_pw_user", "password123", "too easy to guess"),
        ("Same.As.Name", "same.as.name", "must not be the username"),
    ],
)
async def test_a_weak_password_is_refused_with_why(
    http: httpx.AsyncClient, username: str, password: str, why: str
) -> None:
    name = f"{username}_{uuid.uuid4().hex[:6]}"
    if password == "same.as.name":
        password = name.lower()
    response = await http.post(
        "/api/v1/auth/register", json={"username": name, "password": password}
    )
    assert response.status_code == 422, response.text
    assert why in response.json()["detail"]
    assert {e["field"] for e in response.json()["errors"]} == {"password"}


async def test_failed_logins_throttle_the_account_with_retry_after(http: httpx.AsyncClient) -> None:
    user = await new_user(http, prefix="throttled")
    wrong = {"username": user.username, "password": "not-the-password-1"}
    for _ in range(10):  # API_LOGIN_MAX_FAILURES
        assert (await http.post("/api/v1/auth/login", json=wrong)).status_code == 401
    right = {"username": user.username, "password": user.password}
    refused = await http.post("/api/v1/auth/login", json=right)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) > 0
    assert "too many failed logins" in refused.json()["detail"]
    other = await new_user(http, prefix="unthrottled")  # other accounts are not affected
    assert other.token


@pytest.mark.parametrize(
    ("base", "path", "allowed"),
    [
        ("integr8scode-backend", "/api/v1/notifications/settings", "GET, HEAD, PUT"),
        ("integr8scode-backend", "/api/v1/execute", "POST"),
        ("event-replay", "/api/v1/replay/sessions", "GET, HEAD, POST"),
    ],
)
async def test_a_wrong_method_is_a_405_allowing_every_method_of_the_path(
    http: httpx.AsyncClient, base: str, path: str, allowed: str
) -> None:
    response = await http.request("OPTIONS", f"{local_stack().services[base]}{path}")
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
