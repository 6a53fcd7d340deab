"""Which rule applies to a request, whom it counts, and the defaults from settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from integr8scode_api.config import RateLimitSettings
from integr8scode_api.domain.rate_limit import (
    Algorithm,
    RateLimitRule,
    Scope,
    resolve_rule,
    subject_for,
)


def _rule(name: str, pattern: str, **kw: object) -> RateLimitRule:
    fields: dict[str, object] = {
        "name": name,
        "pattern": pattern,
        "limit": 5,
        "window_s": 60,
        "algorithm": "sliding_window",
        "scope": "user",
        **kw,
    }
    return RateLimitRule.model_validate(fields)


DEFAULTS = RateLimitSettings().default_rules()


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/v1/auth/login", "auth"),
        ("POST", "/api/v1/auth/register", "auth"),
        ("GET", "/api/v1/auth/me", "default"),
        ("POST", "/api/v1/execute", "execute"),
        ("GET", "/api/v1/execute", "default"),
        ("GET", "/api/v1/executions/ab12", "default"),
        ("PUT", "/api/v1/admin/rate-limits/auth", "default"),
    ],
)
def test_default_rules_match_the_routes_they_are_for(method: str, path: str, expected: str) -> None:
    rule = resolve_rule(DEFAULTS, method, path)
    assert rule is not None
    assert rule.name == expected


def test_routes_outside_the_api_match_no_default_rule() -> None:
    assert resolve_rule(DEFAULTS, "GET", "/health/live") is None


def test_the_most_specific_pattern_wins_whatever_the_order() -> None:
    broad = _rule("broad", "* /api/v1/*")
    narrow = _rule("narrow", "GET /api/v1/executions/*")
    for rules in ([broad, narrow], [narrow, broad]):
        chosen = resolve_rule(rules, "GET", "/api/v1/executions/ab12")
        assert chosen is not None
        assert chosen.name == "narrow"


def test_ties_are_broken_by_name_so_the_choice_is_stable() -> None:
    a, b = _rule("a", "GET /x"), _rule("b", "GET /x")
    assert resolve_rule([b, a], "GET", "/x") == a


def test_disabled_rules_are_skipped() -> None:
    off = _rule("narrow", "GET /x", enabled=False)
    on = _rule("broad", "*")
    assert resolve_rule([off, on], "GET", "/x") == on
    assert resolve_rule([off], "GET", "/x", name="narrow") is None


def test_a_named_rule_applies_regardless_of_its_pattern() -> None:
    named = _rule("special", "GET /elsewhere")
    assert resolve_rule([named, *DEFAULTS], "POST", "/api/v1/execute", name="special") == named


def test_a_pattern_without_a_method_matches_every_method() -> None:
    rule = _rule("r", "/api/v1/executions/*")
    assert rule.pattern == "* /api/v1/executions/*"
    assert rule.matches("delete", "/api/v1/executions/ab12")


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "Bad Name"},
        {"limit": 0},
        {"window_s": 0},
        {"algorithm": "leaky_bucket"},
        {"scope": "everyone"},
        {"pattern": ""},
    ],
)
def test_invalid_rules_are_refused(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {"pattern": "*", **bad}
    name = str(fields.pop("name", "ok"))
    with pytest.raises(ValidationError):
        _rule(name, str(fields.pop("pattern")), **fields)


def test_subject_is_the_user_when_known_and_the_client_otherwise() -> None:
    per_user = _rule("u", "*", scope="user")
    per_client = _rule("c", "*", scope="client")
    assert subject_for(per_user, "u1", "10.0.0.1") == "user:u1"
    assert subject_for(per_user, None, "10.0.0.1") == "client:10.0.0.1"
    assert subject_for(per_client, "u1", "10.0.0.1") == "client:10.0.0.1"


def test_default_rules_follow_the_settings() -> None:
    rules = {
        r.name: r
        for r in RateLimitSettings(
            auth_limit=3, execute_capacity=50, execute_refill_per_s=25, default_limit=7
        ).default_rules()
    }
    assert (rules["auth"].limit, rules["auth"].scope) == (3, Scope.CLIENT)
    assert rules["execute"].algorithm is Algorithm.TOKEN_BUCKET
    assert rules["execute"].limit == 50
    assert rules["execute"].window_s == pytest.approx(2.0)  # 50 tokens at 25/s
    assert rules["default"].limit == 7


def test_default_rules_can_be_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_RATE_LIMIT_EXECUTE_CAPACITY", "1000")
    monkeypatch.setenv("API_RATE_LIMIT_AUTH_LIMIT", "500")
    rules = {r.name: r for r in RateLimitSettings().default_rules()}
    assert rules["execute"].limit == 1000
    assert rules["auth"].limit == 500
