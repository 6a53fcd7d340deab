"""Auth against the real stack (Mongo-wire FerretDB, Redis), through an in-process app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integr8scode_api.domain.auth import BAD_CREDENTIALS

if TYPE_CHECKING:
    from conftest import LiveStack

REGISTER, LOGIN, ME = "/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/me"


async def test_register_login_me(live: LiveStack) -> None:
    client = await live.client()
    created = await client.post(
        REGISTER, json={"username": "Alice", "password": "Sturdy-Lantern-41"}
    )
    assert created.status_code == 202, created.text
    assert created.json()["username"] == "alice"

    login = await client.post(LOGIN, json={"username": "alice", "password": "Sturdy-Lantern-41"})
    assert login.status_code == 200, login.text
    token = login.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600

    me = await client.get(ME, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert (me.json()["username"], me.json()["role"]) == ("alice", "user")


async def test_the_password_is_stored_as_argon2id_under_a_unique_username(
    live: LiveStack,
) -> None:
    client = await live.client()
    await client.post(REGISTER, json={"username": "bob", "password": "Sturdy-Lantern-41"})
    users = live.mongo[live.database]["users"]
    doc = await users.find_one({"username": "bob"})
    assert doc is not None
    assert doc["password_hash"].startswith("$argon2id$")
    assert "Sturdy-Lantern-41" not in str(doc)
    indexes = await users.index_information()
    assert indexes["username_unique"]["unique"]
    assert indexes["skeleton_unique"]["unique"]
    assert doc["skeleton"] == "bob"


async def test_a_taken_or_look_alike_name_gets_the_free_names_answer(live: LiveStack) -> None:
    client = await live.client()
    first = await client.post(REGISTER, json={"username": "carol", "password": "Sturdy-Lantern-41"})
    again = await client.post(REGISTER, json={"username": "CAROL", "password": "Quiet-Harbor-73"})
    twin = await client.post(REGISTER, json={"username": "caro1", "password": "Quiet-Harbor-73"})
    assert first.status_code == again.status_code == twin.status_code == 202
    assert first.json() == again.json()
    assert twin.json() == {**first.json(), "username": "caro1"}
    assert await live.mongo[live.database]["users"].count_documents({}) == 2  # + the admin
    taken = await client.post(LOGIN, json={"username": "carol", "password": "Quiet-Harbor-73"})
    assert taken.status_code == 401


async def test_bad_password_and_unknown_user_are_the_same_401(live: LiveStack) -> None:
    client = await live.client()
    await client.post(REGISTER, json={"username": "dave", "password": "Sturdy-Lantern-41"})
    wrong = await client.post(LOGIN, json={"username": "dave", "password": "Quiet-Harbor-73"})
    unknown = await client.post(LOGIN, json={"username": "nobody", "password": "Sturdy-Lantern-41"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": BAD_CREDENTIALS}


async def test_an_invalid_token_is_401(live: LiveStack) -> None:
    client = await live.client()
    response = await client.get(ME, headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_a_token_of_another_process_secret_is_401(live: LiveStack) -> None:
    ours = await live.client()
    other_secret = {"auth": {"jwt_secret": "a-completely-different-secret-of-32+chars"}}
    theirs = await live.client(live.settings(**other_secret))
    await theirs.post(REGISTER, json={"username": "erin", "password": "Sturdy-Lantern-41"})
    token = (
        await theirs.post(LOGIN, json={"username": "erin", "password": "Sturdy-Lantern-41"})
    ).json()
    response = await ours.get(ME, headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 401


async def test_admin_routes_are_403_for_users_and_open_to_the_bootstrap_admin(
    live: LiveStack,
) -> None:
    client = await live.client()
    await client.post(REGISTER, json={"username": "frank", "password": "Sturdy-Lantern-41"})
    token = (
        await client.post(LOGIN, json={"username": "frank", "password": "Sturdy-Lantern-41"})
    ).json()
    user_headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await client.get("/api/v1/admin/rate-limits", headers=user_headers)).status_code == 403
    assert (await client.get("/api/v1/admin/rate-limits")).status_code == 401

    admin_headers = await live.admin_headers(client)
    listed = await client.get("/api/v1/admin/rate-limits", headers=admin_headers)
    assert listed.status_code == 200
    assert {r["name"] for r in listed.json()} >= {"auth", "execute", "default"}
    me = await client.get(ME, headers=admin_headers)
    assert me.json()["role"] == "admin"


async def test_nobody_can_register_the_admin_name(live: LiveStack) -> None:
    client = await live.client()
    await live.admin_headers(client)
    response = await client.post(
        REGISTER, json={"username": "OPSCH1EF", "password": "Sturdy-Lantern-41"}
    )
    assert response.status_code == 202  # like any taken name: the admin's isn't disclosed
    users = live.mongo[live.database]["users"]
    assert await users.count_documents({}) == 1
    reserved = await client.post(
        REGISTER, json={"username": "adm1n", "password": "Sturdy-Lantern-41"}
    )
    assert reserved.status_code == 422
    assert "reserved" in reserved.json()["detail"]


async def test_a_second_instance_does_not_duplicate_the_admin(live: LiveStack) -> None:
    first = await live.client()
    await live.admin_headers(first)
    second = await live.client()
    await live.admin_headers(second)
    count = await live.mongo[live.database]["users"].count_documents({"role": "admin"})
    assert count == 1
