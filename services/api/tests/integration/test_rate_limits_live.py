"""Rate limits against the real Redis: both algorithms answer 429 with the headers, and rules
changed through the admin API apply at run time, in this process and in another one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from tests.polling import eventually

if TYPE_CHECKING:
    from conftest import LiveStack

RULES, ME, LOGIN = "/api/v1/admin/rate-limits", "/api/v1/auth/me", "/api/v1/auth/login"


async def _user_headers(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    creds = {"username": name, "password": "Sturdy-Lantern-41"}
    await client.post("/api/v1/auth/register", json=creds)
    token = (await client.post(LOGIN, json=creds)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def _put_rule(
    client: httpx.AsyncClient, admin: dict[str, str], name: str, **spec: object
) -> None:
    body = {"pattern": f"GET {ME}", "scope": "user", **spec}
    response = await client.put(f"{RULES}/{name}", json=body, headers=admin)
    assert response.status_code == 200, response.text


async def test_sliding_window_answers_429_with_retry_after_and_headers(live: LiveStack) -> None:
    client = await live.client()
    admin = await live.admin_headers(client)
    user = await _user_headers(client, "slider")
    await _put_rule(client, admin, "me", limit=3, window_s=60, algorithm="sliding_window")

    answers = [await client.get(ME, headers=user) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    refused = answers[-1]
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert 60 <= int(refused.headers["X-RateLimit-Reset"]) <= 120
    assert 1 <= int(refused.headers["Retry-After"]) <= 120
    assert "rate limit 'me' exceeded" in refused.json()["detail"]


async def test_token_bucket_answers_429_and_refills(live: LiveStack) -> None:
    client = await live.client()
    admin = await live.admin_headers(client)
    user = await _user_headers(client, "bucket")
    # 2 tokens, refilled at 4 per second
    await _put_rule(client, admin, "me", limit=2, window_s=0.5, algorithm="token_bucket")

    async def exhausted() -> httpx.Response | None:
        response = await client.get(ME, headers=user)
        return response if response.status_code == 429 else None

    refused = await eventually(exhausted, timeout_s=5, interval_s=0, what="bucket empty")
    assert refused.headers["Retry-After"] == "1"  # 0.25 s or less, rounded up
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) <= 1

    async def refilled() -> bool:
        return (await client.get(ME, headers=user)).status_code == 200

    await eventually(refilled, timeout_s=5, interval_s=0.05, what="a token refilled")


async def test_the_auth_rule_counts_per_client_address(live: LiveStack) -> None:
    admin_client = await live.client(address="10.0.0.1")
    admin = await live.admin_headers(admin_client)
    await _put_rule(
        admin_client,
        admin,
        "auth",
        pattern="POST /api/v1/auth/*",
        scope="client",
        limit=2,
        window_s=60,
        algorithm="sliding_window",
    )
    bad = {"username": "nobody", "password": "Sturdy-Lantern-41"}
    client = await live.client(address="10.0.0.2", same_app_as=admin_client)
    codes = [(await client.post(LOGIN, json=bad)).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    other = await live.client(address="10.0.0.3", same_app_as=admin_client)
    assert (await other.post(LOGIN, json=bad)).status_code == 401


async def test_a_rule_change_applies_at_once_here_and_soon_in_another_process(
    live: LiveStack,
) -> None:
    here = await live.client()
    there = await live.client()  # another API process sharing Redis and Mongo
    admin = await live.admin_headers(here)
    user = await _user_headers(here, "changer")
    await there.get(ME, headers=user)  # "there" has the rules cached now

    await _put_rule(here, admin, "me", limit=1, window_s=60, algorithm="sliding_window")
    assert (await here.get(ME, headers=user)).status_code == 200
    assert (await here.get(ME, headers=user)).status_code == 429

    async def refused_there() -> bool:
        return (await there.get(ME, headers=user)).status_code == 429

    await eventually(refused_there, timeout_s=5, interval_s=0.1, what="rule reached process 2")

    await _put_rule(here, admin, "me", limit=1000, window_s=60, algorithm="sliding_window")
    assert (await here.get(ME, headers=user)).status_code == 200

    assert (await here.delete(f"{RULES}/me", headers=admin)).status_code == 204
    after = await here.get(ME, headers=user)
    assert after.headers["X-RateLimit-Limit"] == "600"  # the default rule again


async def test_switching_a_rule_to_the_other_algorithm_starts_clean(live: LiveStack) -> None:
    client = await live.client()
    admin = await live.admin_headers(client)
    user = await _user_headers(client, "switcher")
    await _put_rule(client, admin, "me", limit=1, window_s=60, algorithm="sliding_window")
    await client.get(ME, headers=user)
    assert (await client.get(ME, headers=user)).status_code == 429
    await _put_rule(client, admin, "me", limit=1, window_s=60, algorithm="token_bucket")
    assert (await client.get(ME, headers=user)).status_code == 200


async def test_with_redis_down_requests_pass_without_limit_headers(live: LiveStack) -> None:
    dead_redis = live.settings(redis={"url": "redis://127.0.0.1:1/0"})
    client = await live.client(dead_redis)
    creds = {"username": "survivor", "password": "Sturdy-Lantern-41"}
    assert (await client.post("/api/v1/auth/register", json=creds)).status_code == 202
    login = await client.post(LOGIN, json=creds)
    assert login.status_code == 200
    assert "X-RateLimit-Limit" not in login.headers


async def test_with_redis_down_and_fail_closed_requests_are_503(live: LiveStack) -> None:
    settings = live.settings(
        redis={"url": "redis://127.0.0.1:1/0"}, rate_limit={"fail_open": False}
    )
    client = await live.client(settings)
    response = await client.post(
        LOGIN, json={"username": "x-user", "password": "Sturdy-Lantern-41"}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
