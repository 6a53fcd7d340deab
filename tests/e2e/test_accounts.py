"""Accounts end to end: an admin demotes, disables and deletes users through the api, and
every service that accepts the api's tokens (api, dlq-processor, event-replay) stops honouring
the old ones within seconds; registering says nothing about which names exist; look-alike
names are refused."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.e2e.client import ApiUser, new_user
from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()
USERS = "/api/v1/admin/users"
# One admin route per service that accepts the api's tokens.
ADMIN_ROUTES = {
    "api": "/api/v1/admin/users",
    "dlq-processor": "/api/v1/dlq/messages",
    "event-replay": "/api/v1/replay/sessions",
}
BASES = {
    "api": STACK.services["integr8scode-backend"],
    "dlq-processor": STACK.services["dlq-processor"],
    "event-replay": STACK.services["event-replay"],
}
REVOCATION_BOUND_S = 5.0  # every service caches an account for 2 s; allow for the poll


@pytest.fixture
async def services() -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {name: httpx.AsyncClient(base_url=url, timeout=30) for name, url in BASES.items()}
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()


async def _me(user: ApiUser) -> dict[str, str]:
    response = await user.http.get("/api/v1/auth/me", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def _login(http: httpx.AsyncClient, user: ApiUser) -> dict[str, str]:
    response = await http.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _statuses(
    services: dict[str, httpx.AsyncClient], headers: dict[str, str]
) -> dict[str, int]:
    return {
        name: (await client.get(ADMIN_ROUTES[name], headers=headers)).status_code
        for name, client in services.items()
    }


async def _all_refused_within(
    services: dict[str, httpx.AsyncClient], headers: dict[str, str], what: str
) -> float:
    """Seconds until every service refuses ``headers`` (401/403); fails past the deadline."""
    started = time.monotonic()

    async def refused() -> dict[str, int] | None:
        statuses = await _statuses(services, headers)
        return statuses if all(s in (401, 403) for s in statuses.values()) else None

    await eventually(refused, timeout_s=REVOCATION_BOUND_S * 3, interval_s=0.1, what=what)
    return time.monotonic() - started


async def _new_admin(
    http: httpx.AsyncClient, admin: dict[str, str], prefix: str
) -> tuple[ApiUser, str, dict[str, str]]:
    user = await new_user(http, prefix=prefix)
    user_id = (await _me(user))["id"]
    promoted = await http.patch(f"{USERS}/{user_id}", json={"role": "admin"}, headers=admin)
    assert promoted.status_code == 200, promoted.text
    return user, user_id, await _login(http, user)


async def test_a_demoted_admin_loses_every_admin_api_within_seconds(
    http: httpx.AsyncClient, admin: dict[str, str], services: dict[str, httpx.AsyncClient]
) -> None:
    _, user_id, headers = await _new_admin(http, admin, "demoted")
    assert await _statuses(services, headers) == dict.fromkeys(ADMIN_ROUTES, 200)

    demoted = await http.patch(f"{USERS}/{user_id}", json={"role": "user"}, headers=admin)
    assert demoted.status_code == 200, demoted.text
    took = await _all_refused_within(services, headers, "demoted admin refused everywhere")
    print(f"demotion honoured by api, dlq-processor and event-replay after {took:.2f}s")
    assert took <= REVOCATION_BOUND_S
    # the api refuses at once: the change went through it, and it dropped its cached entry
    assert (await services["api"].get(ADMIN_ROUTES["api"], headers=headers)).status_code == 401


async def test_a_disabled_admin_loses_access_and_cannot_log_in(
    http: httpx.AsyncClient, admin: dict[str, str], services: dict[str, httpx.AsyncClient]
) -> None:
    user, user_id, headers = await _new_admin(http, admin, "disabled")
    off = await http.patch(f"{USERS}/{user_id}", json={"disabled": True}, headers=admin)
    assert off.status_code == 200, off.text
    await _all_refused_within(services, headers, "disabled admin refused everywhere")
    login = await http.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    assert login.status_code == 403


async def test_a_deleted_users_token_is_refused(
    http: httpx.AsyncClient, admin: dict[str, str], services: dict[str, httpx.AsyncClient]
) -> None:
    plain = await new_user(http, prefix="deleted")
    plain_id = (await _me(plain))["id"]
    _, admin_id, admin_token = await _new_admin(http, admin, "deladmin")
    for user_id in (plain_id, admin_id):
        deleted = await http.delete(f"{USERS}/{user_id}", headers=admin)
        assert deleted.status_code == 204, deleted.text
    me = await http.get("/api/v1/auth/me", headers=plain.headers)
    assert me.status_code == 401
    execute = await plain.execute("print(1)")
    assert execute.status_code == 401
    await _all_refused_within(services, admin_token, "deleted admin refused everywhere")


async def test_logout_all_voids_the_callers_tokens_everywhere(
    http: httpx.AsyncClient, admin: dict[str, str], services: dict[str, httpx.AsyncClient]
) -> None:
    _, _, headers = await _new_admin(http, admin, "logout")
    other = dict(headers)
    assert (await http.post("/api/v1/auth/logout-all", headers=headers)).status_code == 204
    await _all_refused_within(services, other, "logged-out admin refused everywhere")


# What each admin API answers a plain user, in its own words (the shared check, libs/auth,
# refuses; each service says what needed the role).
NOT_ADMIN = {
    "api": "this needs the admin role",
    "dlq-processor": "the dead-letter API needs the admin role",
    "event-replay": "replay sessions need the admin role",
}


async def test_every_admin_api_refuses_alike_but_in_its_own_words(
    user: ApiUser, services: dict[str, httpx.AsyncClient]
) -> None:
    missing = "missing bearer token (Authorization: Bearer <access_token>)"
    bad = {"Authorization": "Bearer not-a-token"}
    for name, client in services.items():
        route = ADMIN_ROUTES[name]
        none = await client.get(route)
        assert (none.status_code, none.json(), none.headers["WWW-Authenticate"]) == (
            401,
            {"detail": missing},
            "Bearer",
        ), name
        invalid = await client.get(route, headers=bad)
        assert (invalid.status_code, invalid.json()) == (
            401,
            {"detail": "invalid access token"},
        ), name
        assert invalid.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"', name
        plain = await client.get(route, headers=user.headers)
        assert (plain.status_code, plain.json()) == (403, {"detail": NOT_ADMIN[name]}), name


async def test_an_admin_cannot_demote_itself(
    http: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    me = (await http.get("/api/v1/auth/me", headers=admin)).json()
    response = await http.patch(f"{USERS}/{me['id']}", json={"role": "user"}, headers=admin)
    assert response.status_code == 409
    assert "your own account" in response.json()["detail"]


async def _register(
    http: httpx.AsyncClient, name: str, password: str
) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await http.post(
        "/api/v1/auth/register", json={"username": name, "password": password}
    )
    return response, time.perf_counter() - started


async def test_register_answers_the_same_for_taken_and_free_names(http: httpx.AsyncClient) -> None:
    taken = await new_user(http, prefix="taken")
    free_times, taken_times = [], []
    for i in range(5):
        free, t_free = await _register(http, f"free_{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4()}")
        again, t_taken = await _register(http, taken.username, f"pw-{uuid.uuid4()}-{i}")
        assert free.status_code == again.status_code == 202
        assert set(free.json()) == set(again.json()) == {"username", "detail"}
        assert free.json()["detail"] == again.json()["detail"]
        assert sorted(free.headers.keys()) == sorted(again.headers.keys())
        free_times.append(t_free)
        taken_times.append(t_taken)
    ratio = statistics.median(taken_times) / statistics.median(free_times)
    print(f"register: free {statistics.median(free_times) * 1000:.0f} ms, taken ratio {ratio:.2f}")
    assert 1 / 3 < ratio < 3  # both hash the password; the stored account is untouched
    assert (await http.get("/api/v1/auth/me", headers=taken.headers)).status_code == 200
    # the second registrant finds out at login
    login = await http.post(
        "/api/v1/auth/login", json={"username": taken.username, "password": "pw-other-x1"}
    )
    assert login.status_code == 401


async def test_look_alike_names_are_refused(http: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8].replace("0", "a").replace("1", "b").replace("m", "c")
    original = await new_user(http, prefix=f"bob_{tag}")
    suffix = original.username.split("_", 2)[2]
    for twin in (f"b0b_{tag}_{suffix}", f"BOB_{tag}_{suffix}"):
        password = f"pw-{uuid.uuid4()}"
        response, _ = await _register(http, twin, password)
        assert response.status_code == 202
        login = await http.post("/api/v1/auth/login", json={"username": twin, "password": password})
        assert login.status_code == 401, twin  # no account was made
    for reserved in ("adm1n", "r00t", "systern", "Administrator"):
        response, _ = await _register(http, reserved, f"pw-{uuid.uuid4()}")
        assert response.status_code == 422, reserved
        assert "reserved" in response.json()["detail"]
