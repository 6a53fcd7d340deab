"""Settings: env names, and the refusal of local defaults outside a local environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from integr8scode_api.config import (
    DEFAULT_ADMIN_PASSWORD,
    AuthSettings,
    ExecutionSettings,
    InsecureConfigError,
    Settings,
)


def test_auth_settings_read_the_documented_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_JWT_SECRET", "s" * 40)
    monkeypatch.setenv("API_ACCESS_TOKEN_TTL_S", "120")
    monkeypatch.setenv("API_ADMIN_USERNAME", "boss")
    monkeypatch.setenv("API_ADMIN_PASSWORD", "boss-password")
    monkeypatch.setenv("API_REDIS_KEY_PREFIX", "t:")
    settings = Settings()
    assert settings.auth.resolve_jwt_secret("production") == "s" * 40
    assert settings.auth.access_token_ttl_s == 120
    assert settings.auth.admin_username == "boss"
    assert settings.auth.admin_password.get_secret_value() == "boss-password"
    assert settings.redis_key_prefix == "t:"


def test_a_short_jwt_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        AuthSettings.model_validate({"jwt_secret": "short"})


def test_without_a_secret_a_local_process_makes_a_random_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = AuthSettings.model_validate({})
    first, second = auth.resolve_jwt_secret("local"), auth.resolve_jwt_secret("local")
    assert len(first) >= 32
    assert first != second
    assert "API_JWT_SECRET is not set" in caplog.text


def test_without_a_secret_a_production_process_refuses_to_start() -> None:
    with pytest.raises(InsecureConfigError, match="API_JWT_SECRET"):
        AuthSettings.model_validate({}).resolve_jwt_secret("production")


def test_the_default_admin_password_is_a_warning_locally_and_an_error_elsewhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = AuthSettings.model_validate({})
    assert auth.admin_password.get_secret_value() == DEFAULT_ADMIN_PASSWORD
    auth.check_admin_password("local")
    assert "default password" in caplog.text
    with pytest.raises(InsecureConfigError, match="API_ADMIN_PASSWORD"):
        auth.check_admin_password("production")
    AuthSettings.model_validate({"admin_password": "a-real-one!"}).check_admin_password("prod")


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    auth = AuthSettings.model_validate({"jwt_secret": "x" * 40})
    assert "x" * 40 not in repr(auth)
    assert DEFAULT_ADMIN_PASSWORD not in repr(auth)


def test_execution_limits_and_language_overrides_read_the_documented_env_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_EXECUTION_DEFAULT_CPU_TIME_S", "3")
    monkeypatch.setenv("API_EXECUTION_MAX_PROCESSES", "100")
    monkeypatch.setenv("API_EXECUTION_DEFAULT_OUTPUT_KB", "256")
    monkeypatch.setenv("API_EXECUTION_MAX_FILES", "4")
    monkeypatch.setenv(
        "API_EXECUTION_LANGUAGE_LIMITS",
        '{"javascript": {"defaults": {"memory_mb": 256}, "maximums": {"memory_mb": 1024}}}',
    )
    policy = ExecutionSettings().policy()
    assert policy.inputs.max_files == 4
    base = policy.limits.table("python")
    assert (base.defaults.cpu_time_s, base.defaults.max_output_kb) == (3, 256)
    assert base.maximums.max_processes == 100
    js = policy.limits.table("javascript")
    assert (js.defaults.memory_mb, js.maximums.memory_mb, js.defaults.timeout_s) == (256, 1024, 10)


def test_a_default_limit_above_its_maximum_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_EXECUTION_DEFAULT_PROCESSES", "200")
    with pytest.raises(ValidationError, match="default max_processes 200 is above its maximum"):
        ExecutionSettings()
