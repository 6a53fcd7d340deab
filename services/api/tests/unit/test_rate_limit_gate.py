"""The gate: rule lookup, counting, and what happens when the limiter can't be asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.rate_limit import RateLimitGate

if TYPE_CHECKING:
    from conftest import FakeClock, FakeLimiter, FakeRules


Parts = tuple["FakeLimiter", "FakeRules", "FakeClock"]


@pytest.fixture
def parts(gate_parts: Parts) -> Parts:
    return gate_parts


def _gate(parts: Parts, **kw: bool) -> RateLimitGate:
    limiter, rules, clock = parts
    return RateLimitGate(limiter, rules, backoff_s=1.0, clock=clock, **kw)


async def test_counts_per_client_and_refuses_over_the_limit(
    parts: Parts,
) -> None:
    gate = _gate(parts)
    first = await gate.check(method="POST", path="/api/v1/auth/login", user_id=None, client="a")
    second = await gate.check(method="POST", path="/api/v1/auth/login", user_id=None, client="a")
    third = await gate.check(method="POST", path="/api/v1/auth/login", user_id=None, client="a")
    other = await gate.check(method="POST", path="/api/v1/auth/login", user_id=None, client="b")
    assert [first.allowed, second.allowed, third.allowed, other.allowed] == [
        True,
        True,
        False,
        True,
    ]
    assert third.subject == "client:a"
    assert third.decision is not None
    assert third.decision.remaining == 0


async def test_nothing_is_counted_when_disabled_or_no_rule_applies(
    parts: Parts,
) -> None:
    limiter = parts[0]
    off = await _gate(parts, enabled=False).check(
        method="POST", path="/api/v1/auth/login", user_id=None, client="a"
    )
    unmatched = await _gate(parts).check(
        method="GET", path="/health/live", user_id=None, client="a"
    )
    assert off.rule is None
    assert unmatched.rule is None
    assert off.allowed
    assert unmatched.allowed
    assert limiter.calls == 0


async def test_fails_open_and_backs_off_while_the_limiter_is_down(
    parts: Parts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter, _, clock = parts
    gate = _gate(parts, fail_open=True)
    limiter.down = True
    first = await gate.check(method="POST", path="/api/v1/execute", user_id="u", client="a")
    second = await gate.check(method="POST", path="/api/v1/execute", user_id="u", client="a")
    assert first.allowed
    assert first.degraded
    assert first.decision is None
    assert second.degraded
    assert limiter.calls == 1  # the second request didn't wait for a dead Redis
    assert sum("letting requests through" in r.getMessage() for r in caplog.records) == 1

    clock.now += 1.5
    limiter.down = False
    recovered = await gate.check(method="POST", path="/api/v1/execute", user_id="u", client="a")
    assert not recovered.degraded
    assert recovered.decision is not None
    assert limiter.calls == 2


async def test_fails_closed_when_configured_so(
    parts: Parts,
) -> None:
    limiter, _, _ = parts
    limiter.down = True
    gate = _gate(parts, fail_open=False)
    with pytest.raises(DependencyUnavailableError):
        await gate.check(method="POST", path="/api/v1/execute", user_id="u", client="a")
    with pytest.raises(DependencyUnavailableError):  # during the back-off too
        await gate.check(method="POST", path="/api/v1/execute", user_id="u", client="a")
