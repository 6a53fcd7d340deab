"""TelemetrySettings reads the standard OTEL_* variables and validates them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from integr8scode_telemetry.settings import TelemetrySettings

_ENV = (
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_TRACES_SAMPLER_ARG",
    "INTEGR8SCODE_TRACES_SAMPLER",
    "INTEGR8SCODE_ADAPTIVE_TRACES_PER_SECOND",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "DEPLOYMENT_ENVIRONMENT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def test_defaults_trace_everything_and_export_nowhere() -> None:
    settings = TelemetrySettings()
    assert settings.sdk_disabled is False
    assert settings.otlp_endpoint is None
    assert settings.sampler == "parentbased_ratio"
    assert settings.sampler_ratio == 1.0
    assert settings.tracing_enabled is True


def test_reads_the_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("INTEGR8SCODE_TRACES_SAMPLER", "adaptive")
    monkeypatch.setenv("INTEGR8SCODE_ADAPTIVE_TRACES_PER_SECOND", "12.5")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "2500")
    monkeypatch.setenv("DEPLOYMENT_ENVIRONMENT", "ci")

    settings = TelemetrySettings()

    assert settings.otlp_endpoint == "http://collector:4317"
    assert settings.sampler_ratio == 0.25
    assert settings.sampler == "adaptive"
    assert settings.adaptive_traces_per_second == 12.5
    assert settings.metrics_export_interval_ms == 2500
    assert settings.environment == "ci"
    assert settings.tracing_enabled is True


def test_sdk_disabled_switches_tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    settings = TelemetrySettings()
    assert settings.sdk_disabled is True
    assert settings.tracing_enabled is False


def test_ratio_zero_switches_tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    settings = TelemetrySettings()
    assert settings.sampler_ratio == 0.0
    assert settings.tracing_enabled is False


def test_sampler_off_switches_tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTEGR8SCODE_TRACES_SAMPLER", "off")
    assert TelemetrySettings().tracing_enabled is False


@pytest.mark.parametrize("ratio", ["1.5", "-0.1"])
def test_ratio_outside_zero_one_is_rejected(monkeypatch: pytest.MonkeyPatch, ratio: str) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", ratio)
    with pytest.raises(ValidationError, match=r"OTEL_TRACES_SAMPLER_ARG|sampler_ratio"):
        TelemetrySettings()


def test_ratio_1_5_rejected_by_keyword_too() -> None:
    with pytest.raises(ValidationError):
        TelemetrySettings(sampler_ratio=1.5)


def test_unknown_sampler_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTEGR8SCODE_TRACES_SAMPLER", "always_on_please")
    with pytest.raises(ValidationError):
        TelemetrySettings()


def test_non_positive_adaptive_budget_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTEGR8SCODE_ADAPTIVE_TRACES_PER_SECOND", "0")
    with pytest.raises(ValidationError):
        TelemetrySettings()
