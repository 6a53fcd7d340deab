"""Account administration against the real stack: an admin demotes, disables and deletes
users through the API and their tokens stop working at once in the api."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx
    from conftest import LiveStack

USERS = "/api/v1/admin/users"
PASSWORD = "Sturdy-Lantern-41"


async def _user(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    await client.post("/api/v1/auth/register", json={"username": name, "password": PASSWORD})
    login = await client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    return (await client.get("/api/v1/auth/me", headers=headers)).json()["id"], headers


async def _login(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    login = await client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_promote_then_demote_an_admin(live: LiveStack) -> None:
    client = await live.client()
    boss = await live.admin_headers(client)
    helper_id, helper = await _user(client, "helper")
    promoted = await client.patch(f"{USERS}/{helper_id}", json={"role": "admin"}, headers=boss)
    assert promoted.status_code == 200, promoted.text
    # the token from before the promotion is void; a fresh login has the admin role
    assert (await client.get(USERS, headers=helper)).status_code == 401
    helper = await _login(client, "helper")
    listed = await client.get(USERS, headers=helper)
    assert listed.status_code == 200
    assert {u["username"] for u in listed.json()} >= {"helper", "opschief"}

    demoted = await client.patch(f"{USERS}/{helper_id}", json={"role": "user"}, headers=boss)
    assert demoted.json()["role"] == "user"
    refused = await client.get(USERS, headers=helper)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert (await client.get(USERS, headers=await _login(client, "helper"))).status_code == 403


async def test_the_bootstrap_admin_cannot_remove_itself(live: LiveStack) -> None:
    client = await live.client()
    boss = await live.admin_headers(client)
    me = (await client.get("/api/v1/auth/me", headers=boss)).json()
    for response in (
        await client.patch(f"{USERS}/{me['id']}", json={"role": "user"}, headers=boss),
        await client.delete(f"{USERS}/{me['id']}", headers=boss),
    ):
        assert response.status_code == 409
    assert (await client.get(USERS, headers=boss)).status_code == 200


async def test_disabled_and_deleted_users_lose_access(live: LiveStack) -> None:
    client = await live.client()
    boss = await live.admin_headers(client)
    ann_id, ann = await _user(client, "ann")
    ben_id, ben = await _user(client, "ben")
    off = await client.patch(f"{USERS}/{ann_id}", json={"disabled": True}, headers=boss)
    assert off.json()["disabled"] is True
    assert (await client.get("/api/v1/auth/me", headers=ann)).status_code == 401
    login = await client.post("/api/v1/auth/login", json={"username": "ann", "password": PASSWORD})
    assert login.status_code == 403
    assert (await client.delete(f"{USERS}/{ben_id}", headers=boss)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=ben)).status_code == 401
    assert (await client.get(f"{USERS}/{ben_id}", headers=boss)).status_code == 404


async def test_logout_all(live: LiveStack) -> None:
    client = await live.client()
    _, first = await _user(client, "cleo")
    second = await _login(client, "cleo")
    assert (await client.post("/api/v1/auth/logout-all", headers=first)).status_code == 204
    for headers in (first, second):
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=await _login(client, "cleo"))).is_success
