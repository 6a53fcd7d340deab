"""Registration, login, rehash, and the admin bootstrap, over fakes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from integr8scode_api.domain.auth import AuthService
from integr8scode_api.domain.errors import (
    Conflict,
    TooManyAttempts,
    Unauthorized,
    ValidationFailed,
)
from integr8scode_api.domain.users import Role

if TYPE_CHECKING:
    from conftest import Harness

from tests.polling import eventually


async def test_register_normalizes_hashes_and_stores(harness: Harness) -> None:
    user = await harness.auth.register("Alice", "Sturdy-Lantern-41")
    assert user.username == "alice"
    assert user.role is Role.USER
    assert user.password_hash == "v2$Sturdy-Lantern-41"
    assert harness.users.by_id[user.id] == user


async def test_register_refuses_a_taken_name_in_any_case(harness: Harness) -> None:
    await harness.auth.register("alice", "Sturdy-Lantern-41")
    with pytest.raises(Conflict, match="already taken"):
        await harness.auth.register("ALICE", "Quiet-Harbor-73")


async def test_register_refuses_the_reserved_admin_name(harness: Harness) -> None:
    with pytest.raises(Conflict):
        await harness.auth.register("Root", "Sturdy-Lantern-41")


async def test_register_checks_the_password_rule(harness: Harness) -> None:
    with pytest.raises(ValidationFailed, match="8-128"):
        await harness.auth.register("alice", "short")


async def test_unknown_user_and_wrong_password_look_the_same(harness: Harness) -> None:
    await harness.auth.register("alice", "Sturdy-Lantern-41")
    harness.hasher.verified.clear()
    with pytest.raises(Unauthorized) as wrong:
        await harness.auth.authenticate("alice", "Quiet-Harbor-73")
    with pytest.raises(Unauthorized) as unknown:
        await harness.auth.authenticate("bob", "Sturdy-Lantern-41")
    with pytest.raises(Unauthorized) as invalid_name:
        await harness.auth.authenticate("b", "Sturdy-Lantern-41")
    assert wrong.value.detail == unknown.value.detail == invalid_name.value.detail
    # each attempt cost one verification: a real one, or one against the dummy hash
    assert len(harness.hasher.verified) == 3


async def test_login_issues_a_token_for_the_user(harness: Harness) -> None:
    user = await harness.auth.register("alice", "Sturdy-Lantern-41")
    token = await harness.auth.login("ALICE", "Sturdy-Lantern-41")
    assert harness.tokens.verify(token.access_token).user_id == user.id


async def test_login_rehashes_a_hash_made_with_old_parameters(harness: Harness) -> None:
    user = await harness.auth.register("alice", "Sturdy-Lantern-41")
    harness.hasher.version = 3
    await harness.auth.authenticate("alice", "Sturdy-Lantern-41")
    assert harness.users.by_id[user.id].password_hash == "v3$Sturdy-Lantern-41"


async def test_ensure_admin_creates_once_and_is_idempotent(harness: Harness) -> None:
    first = await harness.auth.ensure_admin("root", "root-password")
    second = await harness.auth.ensure_admin("root", "root-password")
    assert first is not None
    assert first.role is Role.ADMIN
    assert second == first
    assert len(harness.users.by_id) == 1


async def test_ensure_admin_does_not_promote_an_ordinary_account(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.add_user("root", Role.USER)
    assert await harness.auth.ensure_admin("root", "root-password") is None
    assert "not promoting" in caplog.text


async def test_bootstrap_retries_until_the_store_answers(harness: Harness) -> None:
    harness.users.down = True
    task = asyncio.create_task(
        harness.auth.bootstrap_admin("root", "root-password", retry_s=0.01, max_retry_s=0.02)
    )

    async def retried() -> bool:
        return harness.users.calls >= 3 and not task.done()

    await eventually(retried, timeout_s=5, interval_s=0.01, what="bootstrap retrying")
    harness.users.down = False
    admin = await asyncio.wait_for(task, timeout=5)
    assert admin is not None
    assert admin.role is Role.ADMIN


class FakeThrottle:
    """``LoginThrottle`` counting in memory: blocked at ``limit`` failures."""

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self.failures: dict[str, int] = {}

    async def blocked_for(self, account: str) -> float:
        return 60.0 if self.failures.get(account, 0) >= self.limit else 0.0

    async def failed(self, account: str) -> None:
        self.failures[account] = self.failures.get(account, 0) + 1

    async def succeeded(self, account: str) -> None:
        self.failures.pop(account, None)


def _throttled(harness: Harness, throttle: FakeThrottle) -> AuthService:
    return AuthService(harness.users, harness.hasher, harness.tokens, throttle=throttle)


async def test_failed_logins_throttle_the_account_even_for_the_right_password(
    harness: Harness,
) -> None:
    throttle = FakeThrottle(limit=3)
    auth = _throttled(harness, throttle)
    await auth.register("alice", "Sturdy-Lantern-41")
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await auth.authenticate("Alice", "wrong-guess-123")
    with pytest.raises(TooManyAttempts) as refused:
        await auth.authenticate("alice", "Sturdy-Lantern-41")
    assert refused.value.retry_after_s == 60.0
    assert throttle.failures == {"alice": 3}  # counted by the stored (lower-case) name


async def test_unknown_accounts_are_throttled_alike(harness: Harness) -> None:
    throttle = FakeThrottle(limit=2)
    auth = _throttled(harness, throttle)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await auth.authenticate("nobody", "whatever-it-is")
    with pytest.raises(TooManyAttempts):
        await auth.authenticate("nobody", "whatever-it-is")


async def test_a_successful_login_clears_the_count(harness: Harness) -> None:
    throttle = FakeThrottle(limit=3)
    auth = _throttled(harness, throttle)
    await auth.register("bob", "Quiet-Harbor-73")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await auth.authenticate("bob", "wrong-guess-123")
    await auth.authenticate("bob", "Quiet-Harbor-73")
    assert throttle.failures == {}
