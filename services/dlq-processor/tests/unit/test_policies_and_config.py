"""Retry policies: which rule applies, how long the backoff is, and how settings become rules
(bad configuration stops the start with a message naming the field)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from integr8scode_dlq_processor.config import InsecureConfigError, Settings
from integr8scode_dlq_processor.domain.policies import (
    Action,
    Jitter,
    PolicyBook,
    PolicyRule,
    RetryPolicy,
)

PolicyFactory = Callable[..., RetryPolicy]


def test_most_specific_rule_wins(make_policy: PolicyFactory) -> None:
    default = make_policy(rule="default")
    by_topic = PolicyRule(make_policy(rule="t"), topic="execution_events")
    by_type = PolicyRule(make_policy(rule="e"), event_type="execution.failed")
    by_both = PolicyRule(
        make_policy(rule="te"), topic="execution_events", event_type="execution.completed"
    )
    book = PolicyBook(default, [by_topic, by_type, by_both])

    assert book.for_message("execution_events", "execution.completed").rule == "te"
    assert book.for_message("execution_events", "execution.failed").rule == "e"
    assert book.for_message("other", "execution.failed").rule == "e"
    assert book.for_message("execution_events", "execution.started").rule == "t"
    assert book.for_message("other", None).rule == "default"
    assert book.for_message(None, None).rule == "default"


def test_two_rules_for_the_same_selector_are_refused(make_policy: PolicyFactory) -> None:
    with pytest.raises(ValueError, match="two retry rules for topic=a"):
        PolicyBook(make_policy(), [PolicyRule(make_policy(), "a"), PolicyRule(make_policy(), "a")])


def test_a_rule_must_select_something(make_policy: PolicyFactory) -> None:
    with pytest.raises(ValueError, match="needs a topic"):
        PolicyRule(make_policy())


def test_backoff_grows_exponentially_up_to_the_cap(make_policy: PolicyFactory) -> None:
    p = make_policy(initial_backoff_s=1.0, multiplier=3.0, max_backoff_s=20.0)
    assert [p.ceiling(n) for n in range(1, 6)] == [1.0, 3.0, 9.0, 20.0, 20.0]
    assert p.ceiling(10_000) == 20.0  # no overflow however many attempts


@pytest.mark.parametrize(
    ("jitter", "bounds"),
    [(Jitter.FULL, (0.0, 9.0)), (Jitter.EQUAL, (4.5, 9.0)), (Jitter.NONE, None)],
)
def test_jitter_draws_below_the_ceiling(
    make_policy: PolicyFactory, jitter: Jitter, bounds: tuple[float, float] | None
) -> None:
    p = make_policy(initial_backoff_s=1.0, multiplier=3.0, max_backoff_s=20.0, jitter=jitter)
    asked: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        asked.append((low, high))
        return low

    delay = p.delay(3, uniform)
    if bounds is None:
        assert delay == 9.0
        assert asked == []
    else:
        assert asked == [bounds]
        assert delay == bounds[0]


def test_settings_complete_rules_from_the_defaults() -> None:
    settings = Settings.model_validate(
        {
            "default_max_attempts": 4,
            "default_initial_backoff_s": 2,
            "default_max_backoff_s": 60,
            "retry_policies": [
                {"topic": "notification_events", "max_attempts": 10},
                {"event_type": "execution.requested", "action": "discard"},
            ],
        }
    )
    book = settings.policy_book()
    assert book.default.max_attempts == 4
    notifications = book.for_message("notification_events", "notification.failed")
    assert notifications.rule == "topic=notification_events"
    assert (notifications.max_attempts, notifications.initial_backoff_s) == (10, 2.0)
    assert notifications.max_backoff_s == 60.0
    requested = book.for_message("execution_requests", "execution.requested")
    assert requested.action is Action.DISCARD
    assert requested.rule == "event_type=execution.requested"


def test_production_defaults_are_patient() -> None:
    default = Settings.model_validate({}).default_policy()
    assert (default.max_attempts, default.initial_backoff_s, default.max_backoff_s) == (
        5,
        30.0,
        3600.0,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"retry_policies": [{"max_attempts": 2}]}, "needs 'topic', 'event_type' or both"),
        ({"retry_policies": [{"topic": "a", "max_attempt": 2}]}, "Extra inputs"),
        ({"retry_policies": [{"topic": "a", "action": "requeue"}]}, "'retry' or 'discard'"),
        ({"retry_policies": [{"topic": "a"}, {"topic": "a"}]}, "two retry rules for topic=a"),
        (
            {"retry_policies": [{"topic": "a", "initial_backoff_s": 9, "max_backoff_s": 1}]},
            "max_backoff_s (1) is below initial_backoff_s (9)",
        ),
        ({"default_max_attempts": 0}, "greater than or equal to 1"),
        (
            {"default_initial_backoff_s": 10, "default_max_backoff_s": 1},
            "DLQ_DEFAULT_MAX_BACKOFF_S",
        ),
        ({"claim_lease_s": 5}, "twice the Kafka publish timeout"),
        ({"jwt_secret": "short"}, "at least 32 characters"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings.model_validate(fields)


def test_policies_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DLQ_RETRY_POLICIES", json.dumps([{"topic": "t", "jitter": "none", "max_attempts": 2}])
    )
    rule = Settings().policy_book().for_message("t", None)
    assert (rule.jitter, rule.max_attempts) == (Jitter.NONE, 2)

    monkeypatch.setenv("DLQ_RETRY_POLICIES", "[{not json")
    with pytest.raises(SettingsError, match="retry_policies"):
        Settings()


def test_jwt_secret_falls_back_to_the_apis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_JWT_SECRET", "a" * 40)
    assert Settings().resolve_jwt_secret() == "a" * 40
    monkeypatch.setenv("DLQ_JWT_SECRET", "b" * 40)
    assert Settings().resolve_jwt_secret() == "b" * 40


def test_a_missing_jwt_secret_stops_the_start_outside_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("API_JWT_SECRET", raising=False)
    monkeypatch.delenv("DLQ_JWT_SECRET", raising=False)
    local = Settings.model_validate({"telemetry": {"environment": "local"}})
    assert len(local.resolve_jwt_secret()) >= 32  # random: no token verifies
    production = Settings.model_validate({"telemetry": {"environment": "production"}})
    with pytest.raises(InsecureConfigError, match="DLQ_JWT_SECRET"):
        production.resolve_jwt_secret()


def test_the_account_cache_reads_its_env_name_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DLQ_ACCOUNT_CACHE_S", "0.5")
    assert Settings().account_cache_s == 0.5
    monkeypatch.setenv("DLQ_ACCOUNT_CACHE_S", "31")
    with pytest.raises(ValidationError, match="account_cache_s"):
        Settings()
