"""RetryPolicy.backoff: exponential, jittered within [ceiling/2, ceiling], capped."""

from __future__ import annotations

import pytest

from integr8scode_events.kafka.retry_policy import RetryPolicy


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (6, 1.0), (50, 1.0)],
)
def test_backoff_is_jittered_below_an_exponential_ceiling(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=1.0, multiplier=2.0)
    delays = [policy.backoff(attempt) for _ in range(500)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    # Jitter really spreads the delays over the range (not a constant).
    assert max(delays) - min(delays) > ceiling / 4


def test_backoff_stays_capped_for_endless_retries() -> None:
    # The DLQ processor retries without a limit: the attempt number grows without bound.
    policy = RetryPolicy(initial_backoff_s=0.05, max_backoff_s=2.0)
    for attempt in (1_024, 1_025, 5_000, 10**6):
        assert 1.0 <= policy.backoff(attempt) <= 2.0


def test_defaults_give_a_few_quick_retries() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert 0.025 <= policy.backoff(1) <= 0.05
    assert policy.non_retryable == ()
