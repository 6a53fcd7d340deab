"""``/api/v1/admin/users`` and ``AccountAdmin``: admins only; list, change, delete, revoke;
the guards (yourself, the last admin); every change voids the account's tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from integr8scode_api.domain.accounts import NO_ADMIN_LEFT, AccountAdmin
from integr8scode_api.domain.errors import ConflictError
from integr8scode_api.domain.users import Role

if TYPE_CHECKING:
    from conftest import FakeUsers, Harness

USERS = "/api/v1/admin/users"


def test_admin_user_routes_need_a_token_and_the_admin_role(harness: Harness) -> None:
    user = harness.add_user()
    assert harness.client.get(USERS).status_code == 401
    headers = harness.bearer(user)
    assert harness.client.get(USERS, headers=headers).status_code == 403
    patch = harness.client.patch(f"{USERS}/{user.id}", json={"role": "admin"}, headers=headers)
    assert patch.status_code == 403
    assert harness.users.by_id[user.id].role is Role.USER


def test_list_and_get_users_newest_first_filtered_by_role(harness: Harness) -> None:
    admin = harness.add_user("boss", Role.ADMIN)
    alice = harness.add_user("alice")
    headers = harness.bearer(admin)
    listed = harness.client.get(USERS, headers=headers).json()
    assert [u["username"] for u in listed] == ["alice", "boss"]
    assert "password_hash" not in listed[0]
    assert listed[0]["disabled"] is False
    admins = harness.client.get(USERS, params={"role": "admin"}, headers=headers).json()
    assert [u["id"] for u in admins] == [admin.id]
    one = harness.client.get(f"{USERS}/{alice.id}", headers=headers)
    assert one.json()["username"] == "alice"
    assert harness.client.get(f"{USERS}/nobody", headers=headers).status_code == 404
    assert harness.client.get(USERS, params={"role": "god"}, headers=headers).status_code == 422


def test_demoting_an_admin_voids_its_tokens_at_once(harness: Harness) -> None:
    boss, other = harness.add_user("boss", Role.ADMIN), harness.add_user("other", Role.ADMIN)
    others_token = harness.bearer(other)
    assert harness.client.get(USERS, headers=others_token).status_code == 200
    changed = harness.client.patch(
        f"{USERS}/{other.id}", json={"role": "user"}, headers=harness.bearer(boss)
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "user"
    assert changed.json()["token_generation"] == 1
    refused = harness.client.get(USERS, headers=others_token)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    # logging in again gives a token with the new role: a user's, refused here
    fresh = harness.bearer(harness.users.by_id[other.id])
    assert harness.client.get(USERS, headers=fresh).status_code == 403
    assert harness.client.get("/api/v1/auth/me", headers=fresh).status_code == 200


def test_disable_and_enable_a_user(harness: Harness) -> None:
    boss, alice = harness.add_user("boss", Role.ADMIN), harness.add_user("alice")
    alices_token, headers = harness.bearer(alice), harness.bearer(boss)
    off = harness.client.patch(f"{USERS}/{alice.id}", json={"disabled": True}, headers=headers)
    assert off.json()["disabled"] is True
    assert harness.client.get("/api/v1/auth/me", headers=alices_token).status_code == 401
    on = harness.client.patch(f"{USERS}/{alice.id}", json={"disabled": False}, headers=headers)
    assert on.json()["disabled"] is False
    # enabling again does not bring the old tokens back
    assert harness.client.get("/api/v1/auth/me", headers=alices_token).status_code == 401


def test_asking_for_what_already_is_changes_nothing(harness: Harness) -> None:
    boss, alice = harness.add_user("boss", Role.ADMIN), harness.add_user("alice")
    token = harness.bearer(alice)
    same = harness.client.patch(
        f"{USERS}/{alice.id}",
        json={"role": "user", "disabled": False},
        headers=harness.bearer(boss),
    )
    assert same.status_code == 200
    assert same.json()["token_generation"] == 0
    assert harness.client.get("/api/v1/auth/me", headers=token).status_code == 200


@pytest.mark.parametrize(
    "body", [{}, {"role": "god"}, {"disabled": "maybe"}, {"role": "user", "extra": 1}]
)
def test_a_bad_change_is_422(harness: Harness, body: dict[str, object]) -> None:
    boss, alice = harness.add_user("boss", Role.ADMIN), harness.add_user("alice")
    response = harness.client.patch(f"{USERS}/{alice.id}", json=body, headers=harness.bearer(boss))
    assert response.status_code == 422
    assert response.json()["detail"]


def test_an_admin_cannot_demote_disable_or_delete_itself(harness: Harness) -> None:
    boss = harness.add_user("boss", Role.ADMIN)
    harness.add_user("other", Role.ADMIN)
    headers = harness.bearer(boss)
    for response in (
        harness.client.patch(f"{USERS}/{boss.id}", json={"role": "user"}, headers=headers),
        harness.client.patch(f"{USERS}/{boss.id}", json={"disabled": True}, headers=headers),
        harness.client.delete(f"{USERS}/{boss.id}", headers=headers),
    ):
        assert response.status_code == 409
        assert "your own account" in response.json()["detail"]
    assert harness.users.by_id[boss.id] == boss


async def test_the_service_refuses_to_leave_no_active_admin(harness: Harness) -> None:
    boss = harness.add_user("boss", Role.ADMIN)
    other = harness.add_user("other", Role.ADMIN)
    accounts = AccountAdmin(harness.users)
    await accounts.change(boss, other.id, disabled=True)
    # boss is the last active admin: a (disabled) admin can't remove it either
    for action in (
        accounts.change(other, boss.id, role=Role.USER),
        accounts.change(other, boss.id, disabled=True),
        accounts.delete(other, boss.id),
    ):
        with pytest.raises(ConflictError, match="no active admin"):
            await action
    assert harness.users.by_id[boss.id].role is Role.ADMIN


class RacingUsers:
    """Lets two admins both pass the first count (as when they demote each other at once)."""

    def __init__(self, users: FakeUsers) -> None:
        self.users = users
        self.counts = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.users, name)

    async def count_active_admins(self) -> int:
        self.counts += 1
        real = await self.users.count_active_admins()
        return 2 if self.counts <= 2 else real  # both first checks see two admins


async def test_two_admins_demoting_each_other_at_once_leave_an_admin(harness: Harness) -> None:
    a, b = harness.add_user("a-admin", Role.ADMIN), harness.add_user("b-admin", Role.ADMIN)
    racing = RacingUsers(harness.users)
    accounts = AccountAdmin(racing)  # type: ignore[arg-type]
    await racing.count_active_admins()  # b's first check happened "at the same time"
    demoted_b = await accounts.change(a, b.id, role=Role.USER)  # a's first check: sees 2
    assert demoted_b.role is Role.USER
    with pytest.raises(ConflictError, match=NO_ADMIN_LEFT):  # b's write, then its re-check sees 0
        await accounts.change(b, a.id, role=Role.USER)
    assert harness.users.by_id[a.id].role is Role.ADMIN
    assert await harness.users.count_active_admins() == 1


def test_delete_a_user_voids_its_tokens(harness: Harness) -> None:
    boss, alice = harness.add_user("boss", Role.ADMIN), harness.add_user("alice")
    token, headers = harness.bearer(alice), harness.bearer(boss)
    assert harness.client.delete(f"{USERS}/{alice.id}", headers=headers).status_code == 204
    assert alice.id not in harness.users.by_id
    assert harness.client.get("/api/v1/auth/me", headers=token).status_code == 401
    assert harness.client.delete(f"{USERS}/{alice.id}", headers=headers).status_code == 404


def test_deleting_another_admin_is_allowed_while_one_is_left(harness: Harness) -> None:
    boss, other = harness.add_user("boss", Role.ADMIN), harness.add_user("other", Role.ADMIN)
    headers = harness.bearer(boss)
    assert harness.client.delete(f"{USERS}/{other.id}", headers=headers).status_code == 204


def test_revoke_tokens_logs_a_user_out_everywhere(harness: Harness) -> None:
    boss, alice = harness.add_user("boss", Role.ADMIN), harness.add_user("alice")
    token = harness.bearer(alice)
    revoked = harness.client.post(f"{USERS}/{alice.id}/revoke-tokens", headers=harness.bearer(boss))
    assert revoked.status_code == 200
    assert revoked.json()["token_generation"] == 1
    assert harness.client.get("/api/v1/auth/me", headers=token).status_code == 401
    again = harness.bearer(harness.users.by_id[alice.id])
    assert harness.client.get("/api/v1/auth/me", headers=again).status_code == 200
    missing = harness.client.post(f"{USERS}/nobody/revoke-tokens", headers=harness.bearer(boss))
    assert missing.status_code == 404


def test_user_store_down_is_503(harness: Harness) -> None:
    boss = harness.add_user("boss", Role.ADMIN)
    headers = harness.bearer(boss)
    harness.users.down = True
    response = harness.client.get(USERS, headers=headers)
    assert response.status_code == 503


def test_the_routes_are_in_the_openapi_document(harness: Harness) -> None:
    paths = harness.client.get("/openapi.json").json()["paths"]
    assert set(paths[USERS]) == {"get"}
    assert set(paths[USERS + "/{user_id}"]) == {"get", "patch", "delete"}
    assert "409" in paths[USERS + "/{user_id}"]["patch"]["responses"]
    assert "post" in paths[USERS + "/{user_id}/revoke-tokens"]
    assert "post" in paths["/api/v1/auth/logout-all"]
    assert "202" in paths["/api/v1/auth/register"]["post"]["responses"]
