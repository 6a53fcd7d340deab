"""Registration, login, rehash, and the admin bootstrap, over fakes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from integr8scode_api.domain.auth import AuthService
from integr8scode_api.domain.errors import (
    ConflictError,
    ForbiddenError,
    TooManyAttemptsError,
    UnauthorizedError,
    ValidationFailedError,
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
    with pytest.raises(ConflictError, match="already taken"):
        await harness.auth.register("ALICE", "Quiet-Harbor-73")


@pytest.mark.parametrize("name", ["Root", "adrnin", "ADM1N", "r00t", "systern", "support"])
async def test_register_refuses_reserved_names_and_look_alikes_saying_so(
    harness: Harness, name: str
) -> None:
    with pytest.raises(ValidationFailedError, match="reserved"):
        await harness.auth.register(name, "Sturdy-Lantern-41")
    assert harness.users.by_id == {}


@pytest.mark.parametrize("name", ["OpsChief", "0psChief"])
async def test_the_configured_admin_name_is_refused_like_a_taken_one(
    harness: Harness, name: str
) -> None:
    # Saying "reserved" would tell the admin's name ("opschief" in the harness).
    with pytest.raises(ConflictError, match="already taken"):
        await harness.auth.register(name, "Sturdy-Lantern-41")


async def test_register_refuses_a_look_alike_of_a_taken_name(harness: Harness) -> None:
    await harness.auth.register("bob.smith", "Sturdy-Lantern-41")
    for twin in ("b0b.smith", "bob.srnith", "BOB.SMITH"):
        with pytest.raises(ConflictError):
            await harness.auth.register(twin, "Quiet-Harbor-73")
    assert [u.username for u in harness.users.by_id.values()] == ["bob.smith"]


async def test_sign_up_answers_the_same_for_a_free_and_a_taken_name(harness: Harness) -> None:
    assert await harness.auth.sign_up("Carol", "Sturdy-Lantern-41") == "carol"
    harness.hasher.verified.clear()
    taken = await harness.auth.sign_up("carol", "Quiet-Harbor-73")
    look_alike = await harness.auth.sign_up("caro1", "Quiet-Harbor-73")
    assert (taken, look_alike) == ("carol", "caro1")
    assert len(harness.users.by_id) == 1  # nothing made for either
    with pytest.raises(UnauthorizedError):  # the taken name's second owner finds out at login
        await harness.auth.authenticate("carol", "Quiet-Harbor-73")


async def test_sign_up_hashes_whether_or_not_the_name_is_taken(harness: Harness) -> None:
    hashed: list[str] = []
    real_hash = harness.hasher.hash

    async def counting(password: str) -> str:
        hashed.append(password)
        return await real_hash(password)

    harness.hasher.hash = counting  # type: ignore[method-assign]
    await harness.auth.sign_up("dave", "Sturdy-Lantern-41")
    await harness.auth.sign_up("dave", "Quiet-Harbor-73")
    await harness.auth.sign_up("opschief", "Quiet-Harbor-73")  # the configured admin name
    assert hashed == ["Sturdy-Lantern-41", "Quiet-Harbor-73", "Quiet-Harbor-73"]


async def test_a_disabled_account_cannot_log_in_even_with_its_password(harness: Harness) -> None:
    user = await harness.auth.register("erin", "Sturdy-Lantern-41")
    await harness.users.update_access(user.id, disabled=True)
    with pytest.raises(ForbiddenError, match="disabled"):
        await harness.auth.login("erin", "Sturdy-Lantern-41")
    with pytest.raises(UnauthorizedError):  # a wrong password still says only that
        await harness.auth.login("erin", "Quiet-Harbor-73")


async def test_a_token_carries_the_generation_of_its_account(harness: Harness) -> None:
    user = await harness.auth.register("frank", "Sturdy-Lantern-41")
    await harness.auth.log_out_everywhere(user)
    token = await harness.auth.login("frank", "Sturdy-Lantern-41")
    assert harness.tokens.verify(token.access_token).token_generation == 1


async def test_register_checks_the_password_rule(harness: Harness) -> None:
    with pytest.raises(ValidationFailedError, match="8-128"):
        await harness.auth.register("alice", "short")


async def test_unknown_user_and_wrong_password_look_the_same(harness: Harness) -> None:
    await harness.auth.register("alice", "Sturdy-Lantern-41")
    harness.hasher.verified.clear()
    with pytest.raises(UnauthorizedError) as wrong:
        await harness.auth.authenticate("alice", "Quiet-Harbor-73")
    with pytest.raises(UnauthorizedError) as unknown:
        await harness.auth.authenticate("bob", "Sturdy-Lantern-41")
    with pytest.raises(UnauthorizedError) as invalid_name:
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
        with pytest.raises(UnauthorizedError):
            await auth.authenticate("Alice", "wrong-guess-123")
    with pytest.raises(TooManyAttemptsError) as refused:
        await auth.authenticate("alice", "Sturdy-Lantern-41")
    assert refused.value.retry_after_s == 60.0
    assert throttle.failures == {"alice": 3}  # counted by the stored (lower-case) name


async def test_unknown_accounts_are_throttled_alike(harness: Harness) -> None:
    throttle = FakeThrottle(limit=2)
    auth = _throttled(harness, throttle)
    for _ in range(2):
        with pytest.raises(UnauthorizedError):
            await auth.authenticate("nobody", "whatever-it-is")
    with pytest.raises(TooManyAttemptsError):
        await auth.authenticate("nobody", "whatever-it-is")


async def test_a_successful_login_clears_the_count(harness: Harness) -> None:
    throttle = FakeThrottle(limit=3)
    auth = _throttled(harness, throttle)
    await auth.register("bob", "Quiet-Harbor-73")
    for _ in range(2):
        with pytest.raises(UnauthorizedError):
            await auth.authenticate("bob", "wrong-guess-123")
    await auth.authenticate("bob", "Quiet-Harbor-73")
    assert throttle.failures == {}
