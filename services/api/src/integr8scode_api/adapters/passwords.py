"""Password hashing with Argon2id (argon2-cffi), off the event loop and bounded in concurrency."""

from __future__ import annotations

import asyncio
import logging

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)


class Argon2PasswordHasher:
    """Argon2id with the given cost. Each hash takes ``memory_kib`` of memory and tens of
    milliseconds of CPU, so hashing runs in worker threads (argon2 releases the GIL) and at most
    ``concurrency`` at once: a burst of logins queues instead of exhausting memory."""

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_kib: int = 65_536,
        parallelism: int = 4,
        concurrency: int = 4,
    ) -> None:
        self._argon2 = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._slots = asyncio.Semaphore(concurrency)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except VerificationError:  # includes the plain mismatch
            return False
        except InvalidHashError:
            log.exception("stored password hash is not an Argon2 hash; refusing the login")
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
