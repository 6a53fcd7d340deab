"""How long a paced session waits before the next event."""

from __future__ import annotations

from datetime import datetime

from integr8scode_event_replay.domain.spec import Speed


def spacing_s(
    previous: datetime | None, current: datetime, speed: Speed, max_wait_s: float
) -> float:
    """The wait between publishing the event that occurred at ``previous`` and the one that
    occurred at ``current``: the original gap times the speed factor, never more than
    ``max_wait_s``. No wait at ``max`` speed, before the first event, or when events share a
    moment or come out of order (same time, different executions)."""
    if speed.factor is None or previous is None:
        return 0.0
    gap = (current - previous).total_seconds()
    if gap <= 0:
        return 0.0
    return min(gap * speed.factor, max_wait_s)


def remaining_wait_s(spacing: float, since_last_publish_s: float) -> float:
    """What is left of ``spacing`` once the time already spent since the previous publish
    (its acknowledgement, reading the batch) is counted, so pacing does not drift."""
    return max(0.0, spacing - since_last_publish_s)
