"""``/api/v1/auth`` over HTTP, with fakes behind the Protocols."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from integr8scode_api.adapters.tokens import JwtTokenIssuer
from integr8scode_api.domain.auth import BAD_CREDENTIALS

if TYPE_CHECKING:
    from conftest import Harness

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"  # the harness's


def test_register_login_me(harness: Harness) -> None:
    client = harness.client
    created = client.post(
        "/api/v1/auth/register", json={"username": "Alice", "password": "Sturdy-Lantern-41"}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["username"] == "alice"
    assert body["role"] == "user"
    assert "password_hash" not in body

    login = client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "Sturdy-Lantern-41"}
    )
    assert login.status_code == 200
    token = login.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600

    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == body["id"]


def test_duplicate_username_is_409(harness: Harness) -> None:
    creds = {"username": "alice", "password": "Sturdy-Lantern-41"}
    assert harness.client.post("/api/v1/auth/register", json=creds).status_code == 201
    again = harness.client.post("/api/v1/auth/register", json={**creds, "username": "ALICE"})
    assert again.status_code == 409
    assert again.json() == {"detail": "username 'alice' is already taken"}


def test_invalid_registration_is_422_with_a_clear_message(harness: Harness) -> None:
    response = harness.client.post(
        "/api/v1/auth/register", json={"username": "a b", "password": "short"}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "username: username must be 3-32 characters" in detail
    assert "password: password must be 8-128 characters long" in detail
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"username", "password"}


def test_login_failures_share_one_401(harness: Harness) -> None:
    harness.client.post(
        "/api/v1/auth/register", json={"username": "alice", "password": "Amber-Falcon-88"}
    )
    wrong = harness.client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "nope-nope"}
    )
    unknown = harness.client.post(
        "/api/v1/auth/login", json={"username": "bob", "password": "Amber-Falcon-88"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": BAD_CREDENTIALS}


def test_me_without_a_token_is_401_with_a_bearer_challenge(harness: Harness) -> None:
    response = harness.client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "missing bearer token" in response.json()["detail"]


def test_me_with_a_bad_token_is_401_invalid_token(harness: Harness) -> None:
    for header in ("Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer "):
        response = harness.client.get("/api/v1/auth/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_me_with_an_expired_token_says_so(harness: Harness) -> None:
    user = harness.add_user()
    past = datetime.now(UTC) - timedelta(hours=2)
    token = JwtTokenIssuer(SECRET, ttl_s=60, clock=lambda: past).issue(user).access_token
    response = harness.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert "expired" in response.json()["detail"]


def test_me_for_a_deleted_account_is_401(harness: Harness) -> None:
    user = harness.add_user()
    headers = harness.bearer(user)
    del harness.users.by_id[user.id]
    assert harness.client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_user_store_down_is_503_not_500(harness: Harness) -> None:
    harness.users.down = True
    response = harness.client.post(
        "/api/v1/auth/register", json={"username": "alice", "password": "Sturdy-Lantern-41"}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "unavailable" in response.json()["detail"]
