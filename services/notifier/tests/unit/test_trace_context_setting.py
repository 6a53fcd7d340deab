"""NOTIFIER_PROPAGATE_TRACE_CONTEXT: off unless asked for, and handed to both senders."""

from __future__ import annotations

import pytest

from integr8scode_notifier.config import Settings


def test_trace_context_is_withheld_from_receivers_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOTIFIER_PROPAGATE_TRACE_CONTEXT", raising=False)
    assert Settings().propagate_trace_context is False


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("1", True)])
def test_the_setting_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("NOTIFIER_PROPAGATE_TRACE_CONTEXT", value)
    assert Settings().propagate_trace_context is expected


def test_a_bad_value_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_PROPAGATE_TRACE_CONTEXT", "sometimes")
    with pytest.raises(ValueError, match="propagate_trace_context"):
        Settings()
