"""The lazy package face: every public name resolves to its module's object; others don't."""

from __future__ import annotations

import importlib

import pytest

import integr8scode_telemetry
from integr8scode_telemetry import health, supervisor


@pytest.mark.parametrize("name", integr8scode_telemetry.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(integr8scode_telemetry, name) is not None


def test_the_public_names_are_the_lazy_ones() -> None:
    assert sorted(integr8scode_telemetry.__all__) == sorted(integr8scode_telemetry._EXPORTS)


def test_a_name_is_its_modules_object() -> None:
    assert integr8scode_telemetry.HealthProbe is health.HealthProbe
    assert integr8scode_telemetry.Supervisor is supervisor.Supervisor
    attributes = importlib.import_module("integr8scode_telemetry.attributes")
    assert integr8scode_telemetry.attributes is attributes


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = integr8scode_telemetry.nothing_here  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        importlib.import_module("integr8scode_telemetry.nothing_here")
