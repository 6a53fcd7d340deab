"""Wait for asynchronous outcomes by polling with a deadline, never by sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.2,
    what: str = "condition",
) -> T:
    """Call ``probe`` until it returns something other than None/False; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            result = await probe()
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, then reported
            last_error = exc
            result = None
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{what} not reached within {timeout_s}s (last error: {last_error!r})"
            )
        await asyncio.sleep(interval_s)
