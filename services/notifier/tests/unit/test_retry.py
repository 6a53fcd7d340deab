"""Which outcomes are retried, and the backoff between attempts."""

from __future__ import annotations

import pytest

from integr8scode_notifier.domain.retry import (
    AttemptResult,
    Backoff,
    Outcome,
    classify_status,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (202, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (408, Outcome.RETRYABLE),
        (429, Outcome.RETRYABLE),
        (500, Outcome.RETRYABLE),
        (502, Outcome.RETRYABLE),
        (503, Outcome.RETRYABLE),
        (504, Outcome.RETRYABLE),
        (400, Outcome.PERMANENT),
        (401, Outcome.PERMANENT),
        (403, Outcome.PERMANENT),
        (404, Outcome.PERMANENT),
        (410, Outcome.PERMANENT),
        (422, Outcome.PERMANENT),
        (301, Outcome.PERMANENT),
        (307, Outcome.PERMANENT),
    ],
)
def test_statuses_are_classified(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


def test_a_failed_status_keeps_a_one_line_excerpt_of_the_answer() -> None:
    result = AttemptResult.of_status(500, "boom\n\tat line 3\x00" + "x" * 1000)
    assert result.outcome is Outcome.RETRYABLE
    assert result.status_code == 500
    assert result.error is not None
    assert result.error.startswith("HTTP 500: boom at line 3 x")
    assert len(result.error) <= 300
    assert "\n" not in result.error


def test_a_redirect_says_it_was_not_followed() -> None:
    result = AttemptResult.of_status(302)
    assert result.outcome is Outcome.PERMANENT
    assert result.error == "HTTP 302 (redirects are not followed)"


def test_a_success_carries_no_error() -> None:
    assert AttemptResult.of_status(200, "ok") == AttemptResult(Outcome.DELIVERED, 200)


@pytest.mark.parametrize(
    ("header", "seconds"), [("5", 5.0), (" 1.5 ", 1.5), ("-1", None), ("Wed, 21 Oct", None)]
)
def test_retry_after_in_seconds_is_read(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
    assert AttemptResult.of_status(429, retry_after=header).retry_after_s == seconds


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4.0)
    for _ in range(200):
        assert 0.25 <= backoff.delay(1) <= 0.5
        assert 0.5 <= backoff.delay(2) <= 1.0
        assert 1.0 <= backoff.delay(3) <= 2.0
        assert 2.0 <= backoff.delay(10) <= 4.0
        assert 2.0 <= backoff.delay(10_000) <= 4.0
    assert len({backoff.delay(3) for _ in range(50)}) > 1  # jittered


def test_retry_after_is_a_lower_bound_capped_at_the_maximum() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4.0)
    assert backoff.delay(1, retry_after_s=3.0) == 3.0
    assert backoff.delay(1, retry_after_s=600.0) == 4.0
    assert 0.25 <= backoff.delay(1, retry_after_s=0.0) <= 0.5
