"""Argon2id hashing: verify, mismatch, rehash when the parameters change."""

from __future__ import annotations

from integr8scode_api.adapters.passwords import Argon2PasswordHasher


def _cheap(time_cost: int = 1) -> Argon2PasswordHasher:
    return Argon2PasswordHasher(time_cost=time_cost, memory_kib=1024, parallelism=1)


async def test_hash_is_argon2id_salted_and_verifies() -> None:
    hasher = _cheap()
    first, second = await hasher.hash("correct horse"), await hasher.hash("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert await hasher.verify(first, "correct horse")
    assert not await hasher.verify(first, "wrong horse")


async def test_a_garbage_hash_fails_verification_instead_of_raising() -> None:
    assert not await _cheap().verify("not-a-hash", "whatever1")
    assert _cheap().needs_rehash("not-a-hash")


async def test_rehash_is_needed_only_when_the_parameters_changed() -> None:
    old = await _cheap(time_cost=1).hash("password1")
    assert not _cheap(time_cost=1).needs_rehash(old)
    assert _cheap(time_cost=2).needs_rehash(old)
