"""``/api/v1/auth`` over HTTP, with fakes behind the Protocols."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from integr8scode_api.adapters.tokens import JwtTokenIssuer
from integr8scode_api.domain.auth import BAD_CREDENTIALS
from integr8scode_api.routes.auth import REGISTERED

if TYPE_CHECKING:
    from conftest import Harness

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"  # the harness's


def test_register_login_me(harness: Harness) -> None:
    client = harness.client
    created = client.post(
        "/api/v1/auth/register", json={"username": "Alice", "password": "Sturdy-Lantern-41"}
    )
    assert created.status_code == 202
    body = created.json()
    assert body == {"username": "alice", "detail": REGISTERED}

    login = client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "Sturdy-Lantern-41"}
    )
    assert login.status_code == 200
    token = login.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600

    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert me.json()["role"] == "user"
    assert me.json()["id"] in harness.users.by_id


def test_register_answers_a_taken_name_like_a_free_one(harness: Harness) -> None:
    def register(name: str, password: str) -> tuple[int, dict[str, str], list[str]]:
        r = harness.client.post(
            "/api/v1/auth/register", json={"username": name, "password": password}
        )
        return r.status_code, r.json(), sorted(r.headers.keys())

    free = register("Alice", "Sturdy-Lantern-41")
    taken = register("ALICE", "Quiet-Harbor-73")
    look_alike = register("a1ice", "Quiet-Harbor-73")
    status, body, headers = free
    assert (status, body) == (202, {"username": "alice", "detail": REGISTERED})
    assert taken == (202, {"username": "alice", "detail": REGISTERED}, headers)
    assert look_alike == (202, {"username": "a1ice", "detail": REGISTERED}, headers)
    assert len(harness.users.by_id) == 1
    # the second "alice" learns it at login
    login = harness.client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "Quiet-Harbor-73"}
    )
    assert login.status_code == 401


def test_register_refuses_a_reserved_name_or_its_look_alike_with_422(harness: Harness) -> None:
    for name in ("admin", "Adrnin", "r00t", "\uff41\uff44\uff4d\uff49\uff4e"):  # full-width too
        response = harness.client.post(
            "/api/v1/auth/register", json={"username": name, "password": "Sturdy-Lantern-41"}
        )
        assert response.status_code == 422, name
        assert "reserved" in response.json()["detail"]
    assert harness.users.by_id == {}


def test_full_width_names_are_folded(harness: Harness) -> None:
    response = harness.client.post(
        "/api/v1/auth/register",
        json={"username": "\uff42\uff4f\uff42", "password": "Sturdy-Lantern-41"},
    )
    assert response.json()["username"] == "bob"
    login = harness.client.post(
        "/api/v1/auth/login", json={"username": "bob", "password": "Sturdy-Lantern-41"}
    )
    assert login.status_code == 200


def test_logout_all_voids_every_token_of_the_caller(harness: Harness) -> None:
    user = harness.add_user()
    first, second = harness.bearer(user), harness.bearer(user)
    assert harness.client.post("/api/v1/auth/logout-all", headers=first).status_code == 204
    for headers in (first, second):
        response = harness.client.get("/api/v1/auth/me", headers=headers)
        assert response.status_code == 401
        assert "revoked" in response.json()["detail"]
    fresh = harness.bearer(harness.users.by_id[user.id])
    assert harness.client.get("/api/v1/auth/me", headers=fresh).status_code == 200


def test_a_disabled_account_is_refused_at_login_and_with_its_tokens(harness: Harness) -> None:
    harness.client.post(
        "/api/v1/auth/register", json={"username": "gina", "password": "Sturdy-Lantern-41"}
    )
    user = next(iter(harness.users.by_id.values()))
    headers = harness.bearer(user)
    harness.users.by_id[user.id] = user.model_copy(update={"disabled": True})
    me = harness.client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 401
    assert me.json() == {"detail": "this account is disabled"}
    login = harness.client.post(
        "/api/v1/auth/login", json={"username": "gina", "password": "Sturdy-Lantern-41"}
    )
    assert login.status_code == 403
    assert "disabled" in login.json()["detail"]


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
