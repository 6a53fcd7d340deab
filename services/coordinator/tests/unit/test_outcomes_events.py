"""domain.outcomes: which terminal event (and payload) a sandbox result becomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from integr8scode_coordinator.domain import outcomes
from integr8scode_coordinator.domain.saga import SagaStatus, TerminalReason
from integr8scode_coordinator.sandbox import Outcome
from integr8scode_events import (
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionTimedOut,
    ProducerInfo,
)

if TYPE_CHECKING:
    from conftest import Harness

PRODUCER = ProducerInfo(service="execution-coordinator", version="test")


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("completed", SagaStatus.COMPLETED),
        ("timed_out", SagaStatus.TIMED_OUT),
        ("failed", SagaStatus.FAILED),
        ("cancelled", SagaStatus.CANCELLED),
    ],
)
def test_status_of_each_outcome(harness: Harness, outcome: Outcome, status: SagaStatus) -> None:
    assert outcomes.status_of(harness.result(outcome)) is status


def test_completed_carries_exit_code_usage_and_a_preview(harness: Harness) -> None:
    request = harness.request("ex-1", user_id="u-1")
    result = harness.result(exit_code=2, stdout="45\n", stderr="warning\n")

    event = outcomes.terminal_event(request, result, PRODUCER, cancelled_by="user")

    assert isinstance(event, ExecutionCompleted)
    assert (event.execution_id, event.user_id, event.correlation_id) == (
        "ex-1",
        "u-1",
        request.correlation_id,
    )
    assert event.producer == PRODUCER
    assert event.payload.exit_code == 2
    assert event.payload.resource_usage.peak_memory_kb == 5678
    output = event.payload.output
    assert (output.stdout_preview, output.stderr_preview) == ("45\n", "warning\n")
    assert (output.stdout_bytes, output.stderr_bytes, output.truncated) == (3, 8, False)


def test_a_completed_run_without_an_exit_code_reports_minus_one(harness: Harness) -> None:
    event = outcomes.terminal_event(
        harness.request(), harness.result(exit_code=None), PRODUCER, cancelled_by="user"
    )
    assert isinstance(event, ExecutionCompleted)
    assert event.payload.exit_code == -1


def test_the_preview_is_short_and_the_sizes_are_utf8_bytes(harness: Harness) -> None:
    stdout = "é" * 1000
    result = harness.result(stdout=stdout, truncated=True)

    summary = outcomes.output_summary(result)

    assert summary.stdout_preview == "é" * outcomes.PREVIEW_CHARS
    assert summary.stdout_bytes == 2000
    assert summary.truncated is True


def test_timed_out_names_the_request_timeout(harness: Harness) -> None:
    request = harness.request(timeout_s=2.5)
    result = harness.result("timed_out", exit_code=None, error="wall-clock timeout of 2.5s")

    event = outcomes.terminal_event(request, result, PRODUCER, cancelled_by="user")

    assert isinstance(event, ExecutionTimedOut)
    assert event.payload.timeout_s == 2.5
    assert event.payload.output.stdout_preview == "45\n"


def test_failed_run_is_a_limit_with_the_runner_error(harness: Harness) -> None:
    result = harness.result("failed", exit_code=137, error="memory limit of 128 MB exceeded")

    event = outcomes.terminal_event(harness.request(), result, PRODUCER, cancelled_by="user")

    assert isinstance(event, ExecutionFailed)
    assert event.payload.error_type == "limit_exceeded"
    assert event.payload.error == "memory limit of 128 MB exceeded"
    assert event.payload.exit_code == 137
    assert event.payload.resource_usage is not None
    assert event.payload.output is not None


def test_a_failed_run_without_an_error_still_says_something(harness: Harness) -> None:
    event = outcomes.terminal_event(
        harness.request(), harness.result("failed", error=None), PRODUCER, cancelled_by="user"
    )
    assert isinstance(event, ExecutionFailed)
    assert event.payload.error == "the run failed"


def test_cancelled_while_running(harness: Harness) -> None:
    event = outcomes.terminal_event(
        harness.request(), harness.result("cancelled"), PRODUCER, cancelled_by="u-9"
    )
    assert isinstance(event, ExecutionCancelled)
    assert event.payload.was_running is True
    assert event.payload.cancelled_by == "u-9"


def test_cancelled_while_queued(harness: Harness) -> None:
    event = outcomes.cancelled_event(harness.request(), PRODUCER, cancelled_by="admin")
    assert event.payload.was_running is False
    assert event.payload.cancelled_by == "admin"
    assert event.payload.reason == "cancelled while queued"


@pytest.mark.parametrize("reason", list(TerminalReason))
def test_failed_event_carries_the_reason(harness: Harness, reason: TerminalReason) -> None:
    event = outcomes.failed_event(harness.request(), PRODUCER, "why", reason)
    assert event.payload.error_type == reason.value
    assert event.payload.error == "why"
    assert event.payload.resource_usage is None


def test_every_terminal_event_has_a_fresh_id(harness: Harness) -> None:
    request, result = harness.request(), harness.result()
    first = outcomes.terminal_event(request, result, PRODUCER, cancelled_by="user")
    second = outcomes.terminal_event(request, result, PRODUCER, cancelled_by="user")
    assert first.event_id != second.event_id
