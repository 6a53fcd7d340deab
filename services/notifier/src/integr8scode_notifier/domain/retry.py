"""What one delivery attempt came to, and how long to wait before the next.

- 2xx: delivered.
- 408, 429 and 5xx, timeouts, connection errors: worth another attempt (the receiver is busy
  or briefly down), with exponential backoff and jitter, honouring ``Retry-After`` up to the cap.
- Any other status (other 4xx; 3xx, since redirects are not followed: a redirect could lead
  past the address check): permanent. The receiver understood the request and said no; the
  same request won't be accepted on a retry.
- A refused target (the address check): permanent too, recorded as ``refused``.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

_RETRYABLE_STATUSES = frozenset({408, 429})
_MAX_ERROR = 300


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    REFUSED = "refused"


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None

    @classmethod
    def of_status(
        cls, status_code: int, body: str = "", retry_after: str | None = None
    ) -> AttemptResult:
        """Classify an HTTP answer; ``body`` (a prefix of it) goes into the error."""
        outcome = classify_status(status_code)
        if outcome is Outcome.DELIVERED:
            return cls(outcome, status_code)
        reason = f"HTTP {status_code}"
        if 300 <= status_code < 400:
            reason += " (redirects are not followed)"
        snippet = printable(body)
        if snippet:
            reason += f": {snippet}"
        return cls(outcome, status_code, reason[:_MAX_ERROR], parse_retry_after(retry_after))

    @classmethod
    def retryable(cls, error: str) -> AttemptResult:
        return cls(Outcome.RETRYABLE, error=error[:_MAX_ERROR])

    @classmethod
    def permanent(cls, error: str) -> AttemptResult:
        return cls(Outcome.PERMANENT, error=error[:_MAX_ERROR])

    @classmethod
    def refused(cls, error: str) -> AttemptResult:
        return cls(Outcome.REFUSED, error=error[:_MAX_ERROR])


def classify_status(status_code: int) -> Outcome:
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code in _RETRYABLE_STATUSES or 500 <= status_code < 600:
        return Outcome.RETRYABLE
    return Outcome.PERMANENT


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header in its delay form (the date form is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def printable(text: str, limit: int = 200) -> str:
    """A one-line, bounded excerpt of a receiver's answer for the delivery record."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 2]).split())
    return flat[:limit]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: before attempt ``n + 1`` wait a random time between
    half and all of ``initial_s * 2**(n-1)``, capped at ``max_s``; a ``Retry-After`` the
    receiver sent is a lower bound (itself capped at ``max_s``)."""

    initial_s: float = 0.5
    max_s: float = 10.0

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        ceiling = min(self.max_s, self.initial_s * 2.0 ** min(attempt - 1, 30))
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_s))
        return delay
