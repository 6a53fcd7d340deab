"""Settings: the token secret comes from REPLAY_JWT_SECRET, else the api's API_JWT_SECRET;
outside a local environment the service refuses to start without one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from integr8scode_event_replay.app import create_app
from integr8scode_event_replay.config import InsecureConfigError, Settings

A, B = "a" * 40, "b" * 40


def test_the_api_secret_is_used_when_replay_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLAY_JWT_SECRET", raising=False)
    monkeypatch.setenv("API_JWT_SECRET", A)
    assert Settings().resolve_jwt_secret() == A


def test_replay_s_own_secret_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_JWT_SECRET", A)
    monkeypatch.setenv("REPLAY_JWT_SECRET", B)
    assert Settings().resolve_jwt_secret() == B


def test_a_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAY_JWT_SECRET", "short")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings()


def test_without_a_secret_outside_local_the_app_is_not_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("REPLAY_JWT_SECRET", "API_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEPLOYMENT_ENVIRONMENT", "production")
    with pytest.raises(InsecureConfigError, match="REPLAY_JWT_SECRET or API_JWT_SECRET"):
        create_app(Settings())


def test_without_a_secret_locally_a_random_one_is_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("REPLAY_JWT_SECRET", "API_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEPLOYMENT_ENVIRONMENT", "local")
    settings = Settings()
    assert settings.resolve_jwt_secret() != settings.resolve_jwt_secret()
    assert "accepts no token" in caplog.text


def test_replay_settings_read_their_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAY_MAX_CONCURRENT_SESSIONS", "7")
    monkeypatch.setenv("REPLAY_DEFAULT_MAX_EVENTS", "10")
    monkeypatch.setenv("REPLAY_MAX_EVENTS_LIMIT", "20")
    monkeypatch.setenv("REPLAY_MAX_WAIT_S", "2.5")
    monkeypatch.setenv("REPLAY_ARCHIVER_GROUP", "g")
    settings = Settings()
    assert settings.replay.max_concurrent_sessions == 7
    assert (settings.replay.default_max_events, settings.replay.max_events_limit) == (10, 20)
    assert settings.replay.max_wait_s == 2.5
    assert settings.archiver.group == "g"


def test_a_default_cap_above_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAY_DEFAULT_MAX_EVENTS", "30")
    monkeypatch.setenv("REPLAY_MAX_EVENTS_LIMIT", "20")
    with pytest.raises(ValidationError, match="must not exceed"):
        Settings()


def test_the_account_cache_reads_its_env_name_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLAY_ACCOUNT_CACHE_S", "0.5")
    assert Settings().account_cache_s == 0.5
    monkeypatch.setenv("REPLAY_ACCOUNT_CACHE_S", "31")
    with pytest.raises(ValidationError, match="account_cache_s"):
        Settings()
