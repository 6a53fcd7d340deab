"""How often, and how far apart, a failing handler is tried again in process."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """In-process retries of a failing handler before the message is dead-lettered."""

    max_attempts: int = 3
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    non_retryable: tuple[type[BaseException], ...] = ()

    def backoff(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1``, with full jitter."""
        try:
            growth = self.initial_backoff_s * self.multiplier ** (attempt - 1)
        except OverflowError:  # the DLQ processor retries without end: attempt keeps growing
            growth = self.max_backoff_s
        ceiling = min(self.max_backoff_s, growth)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography
