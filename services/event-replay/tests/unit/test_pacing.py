"""Pacing: the original spacing times the factor, capped; none at max speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integr8scode_event_replay.domain.pacing import spacing_s
from integr8scode_event_replay.domain.spec import Speed

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("gap_s", "factor", "expected"),
    [
        (2.0, 1.0, 2.0),  # real time
        (2.0, 0.1, 0.2),  # ten times faster
        (2.0, 3.0, 6.0),  # three times slower
        (100.0, 1.0, 30.0),  # capped by max_wait_s
        (0.0, 1.0, 0.0),  # same moment
        (-5.0, 1.0, 0.0),  # out of order: no wait
    ],
)
def test_spacing_is_gap_times_factor_capped(gap_s: float, factor: float, expected: float) -> None:
    wait = spacing_s(T0, T0 + timedelta(seconds=gap_s), Speed(factor), max_wait_s=30.0)
    assert wait == pytest.approx(expected)


def test_no_wait_at_max_speed_or_before_the_first_event() -> None:
    assert spacing_s(T0, T0 + timedelta(hours=1), Speed(None), max_wait_s=30.0) == 0.0
    assert spacing_s(None, T0, Speed(1.0), max_wait_s=30.0) == 0.0
