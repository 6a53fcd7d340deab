"""Issue 13's goals, and one line per goal: the measured value against it (never asserted)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    what: str
    goal: float
    stretch: float | None
    unit: str
    higher_is_better: bool


THROUGHPUT = Goal("closed-loop throughput", 25, 40, "/s", higher_is_better=True)
VS_BARE = Goal("platform / bare sandbox", 0.30, 0.50, "", higher_is_better=True)
P99_HALF_LOAD = Goal("p99 POST→terminal at half load", 150, 100, " ms", higher_is_better=False)
TRACING_COST = Goal("tracing cost (1 - on/off)", 0.05, None, "", higher_is_better=False)
HISTORY = Goal("seeded / empty", 1.10, None, "", higher_is_better=False)


def _value(goal: Goal, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.0%}" if goal.unit == "" and goal.goal < 2 else f"{value:.1f}{goal.unit}"


def line(goal: Goal, measured: float) -> str:
    """``what  M  goal ≥ G (stretch S): measured/goal R (met|not met)``."""
    sign = "≥" if goal.higher_is_better else "≤"
    stretch = f" (stretch {_value(goal, goal.stretch)})" if goal.stretch is not None else ""
    head = f"{goal.what:44} {_value(goal, measured):>9}  goal {sign} {_value(goal, goal.goal)}"
    ratio = measured / goal.goal if goal.goal else float("nan")
    if math.isnan(ratio):
        return f"{head}{stretch}: not measured"
    met = ratio >= 1 if goal.higher_is_better else ratio <= 1
    return f"{head}{stretch}: measured/goal {ratio:.2f} ({'met' if met else 'not met'})"
