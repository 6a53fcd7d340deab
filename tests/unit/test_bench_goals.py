"""Issue 13's goals as the benches print them: measured/goal and the verdict by direction."""

from __future__ import annotations

from issue_goals import P99_HALF_LOAD, THROUGHPUT, TRACING_COST, VS_BARE, line


def test_higher_is_better() -> None:
    assert line(THROUGHPUT, 30.0).endswith("measured/goal 1.20 (met)")
    assert line(THROUGHPUT, 12.0).endswith("measured/goal 0.48 (not met)")
    assert "goal ≥ 25.0/s (stretch 40.0/s)" in line(THROUGHPUT, 12.0)


def test_lower_is_better() -> None:
    assert line(P99_HALF_LOAD, 120.0).endswith("measured/goal 0.80 (met)")
    assert line(P99_HALF_LOAD, 201.0).endswith("measured/goal 1.34 (not met)")


def test_ratios_print_as_percentages() -> None:
    assert "15%  goal ≥ 30% (stretch 50%)" in line(VS_BARE, 0.15)


def test_not_measured() -> None:
    assert line(TRACING_COST, float("nan")).endswith("goal ≤ 5%: not measured")
