"""``/api/v1/admin/rate-limits``: admins only; list, put, get, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from integr8scode_api.domain.users import Role

if TYPE_CHECKING:
    from conftest import Harness

RULES = "/api/v1/admin/rate-limits"
SPEC = {
    "pattern": "GET /api/v1/auth/me",
    "limit": 2,
    "window_s": 10,
    "algorithm": "token_bucket",
    "scope": "user",
}


def test_without_a_token_admin_routes_are_401(harness: Harness) -> None:
    assert harness.client.get(RULES).status_code == 401
    assert harness.client.put(f"{RULES}/x", json=SPEC).status_code == 401


def test_for_a_non_admin_admin_routes_are_403(harness: Harness) -> None:
    headers = harness.bearer(harness.add_user())
    assert harness.client.get(RULES, headers=headers).status_code == 403
    assert harness.client.put(f"{RULES}/x", json=SPEC, headers=headers).status_code == 403
    assert harness.client.delete(f"{RULES}/x", headers=headers).status_code == 403


def test_a_demoted_admin_is_refused_though_the_token_still_says_admin(harness: Harness) -> None:
    admin = harness.add_user(role=Role.ADMIN)
    headers = harness.bearer(admin)
    harness.users.by_id[admin.id] = admin.model_copy(update={"role": Role.USER})
    assert harness.client.get(RULES, headers=headers).status_code == 403


def test_admin_lists_puts_gets_and_deletes_rules(harness: Harness) -> None:
    headers = harness.bearer(harness.add_user(role=Role.ADMIN))
    listed = harness.client.get(RULES, headers=headers)
    assert listed.status_code == 200
    assert {r["name"] for r in listed.json()} == {"auth", "default", "execute"}
    assert not any(r["overridden"] for r in listed.json())

    put = harness.client.put(f"{RULES}/me-limit", json=SPEC, headers=headers)
    assert put.status_code == 200
    assert put.json() == {**SPEC, "name": "me-limit", "enabled": True, "overridden": True}

    got = harness.client.get(f"{RULES}/me-limit", headers=headers)
    assert got.json()["limit"] == 2

    assert harness.client.delete(f"{RULES}/me-limit", headers=headers).status_code == 204
    assert harness.client.get(f"{RULES}/me-limit", headers=headers).status_code == 404
    assert harness.client.delete(f"{RULES}/me-limit", headers=headers).status_code == 404


def test_overriding_a_default_and_deleting_the_override_restores_it(harness: Harness) -> None:
    headers = harness.bearer(harness.add_user(role=Role.ADMIN))
    spec = {**SPEC, "pattern": "POST /api/v1/auth/*", "limit": 1000, "scope": "client"}
    harness.client.put(f"{RULES}/auth", json=spec, headers=headers)
    assert harness.client.get(f"{RULES}/auth", headers=headers).json()["limit"] == 1000
    harness.client.delete(f"{RULES}/auth", headers=headers)
    restored = harness.client.get(f"{RULES}/auth", headers=headers).json()
    assert restored["limit"] == 20
    assert not restored["overridden"]


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("ok", {"limit": 0}),
        ("ok", {"algorithm": "fixed"}),
        ("ok", {"limt": 5}),  # a typo is an error, not silently ignored
        ("Not Valid", {}),
    ],
)
def test_invalid_rules_are_422(harness: Harness, name: str, change: dict[str, object]) -> None:
    headers = harness.bearer(harness.add_user(role=Role.ADMIN))
    response = harness.client.put(f"{RULES}/{name}", json={**SPEC, **change}, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: ")


def test_a_rule_put_applies_to_the_next_request(harness: Harness) -> None:
    admin_headers = harness.bearer(harness.add_user(role=Role.ADMIN))
    user_headers = harness.bearer(harness.add_user())
    harness.client.put(f"{RULES}/me-limit", json=SPEC, headers=admin_headers)
    codes = [
        harness.client.get("/api/v1/auth/me", headers=user_headers).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]
