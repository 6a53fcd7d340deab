"""The execution summary of each terminal event, and the Slack message made from it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from integr8scode_events import (
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionTimedOut,
    ProducerInfo,
)
from integr8scode_events.payloads import (
    ExecutionCancelledPayload,
    ExecutionFailedPayload,
    ExecutionTimedOutPayload,
    OutputSummary,
    ResourceUsage,
)
from integr8scode_notifier.domain.slack_message import escape, format_duration, slack_message
from integr8scode_notifier.domain.summary import ExecutionFacts, ExecutionSummary, summarize

PRODUCER = ProducerInfo(service="execution-coordinator", version="test")
FACTS = ExecutionFacts("python", "3.11")
BASE = "http://127.0.0.1:8000/"
USAGE = ResourceUsage(cpu_time_ms=900, wall_time_ms=1234.5, peak_memory_kb=4096)
AT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _envelope() -> dict[str, object]:
    return {
        "producer": PRODUCER,
        "correlation_id": "c",
        "execution_id": "ex-1",
        "user_id": "u",
        "occurred_at": AT,
    }


def _summary(**changes: object) -> ExecutionSummary:
    base: dict[str, object] = {
        "execution_id": "ex-1",
        "status": "completed",
        "language": "python",
        "language_version": "3.11",
        "exit_code": 0,
        "resource_usage": USAGE,
        "error": None,
        "stdout_preview": "45\n",
        "stderr_preview": "",
        "output_truncated": False,
        "finished_at": AT,
        "url": "http://127.0.0.1:8000/api/v1/executions/ex-1",
    }
    return ExecutionSummary(**{**base, **changes})  # type: ignore[arg-type]


def test_a_completed_event_summarises_outcome_language_and_link(
    make_event: Callable[..., ExecutionCompleted],
) -> None:
    event = make_event(execution_id="ex-1", exit_code=3)
    summary = summarize(event, FACTS, BASE)
    assert summary.status == "completed"
    assert summary.exit_code == 3
    assert (summary.language, summary.language_version) == ("python", "3.11")
    assert summary.duration_ms == 123.4
    assert summary.stdout_preview == "45\n"
    assert summary.error is None
    assert summary.finished_at == event.occurred_at
    assert summary.url == "http://127.0.0.1:8000/api/v1/executions/ex-1"
    document = summary.to_json()
    assert json.loads(json.dumps(document)) == document
    assert document["resource_usage"] == {
        "cpu_time_ms": 10.0,
        "wall_time_ms": 123.4,
        "peak_memory_kb": 2048,
    }


@pytest.mark.parametrize(
    ("event", "status", "error"),
    [
        (
            ExecutionFailed(
                **_envelope(),
                payload=ExecutionFailedPayload(
                    error="memory limit of 64 MB exceeded", error_type="limit_exceeded"
                ),
            ),
            "failed",
            "memory limit of 64 MB exceeded",
        ),
        (
            ExecutionTimedOut(
                **_envelope(),
                payload=ExecutionTimedOutPayload(
                    timeout_s=2,
                    resource_usage=USAGE,
                    output=OutputSummary(stdout_bytes=0, stderr_bytes=0),
                ),
            ),
            "timed_out",
            "wall-clock timeout of 2s exceeded",
        ),
        (
            ExecutionCancelled(
                **_envelope(),
                payload=ExecutionCancelledPayload(
                    reason="cancelled by user", cancelled_by="u", was_running=True
                ),
            ),
            "cancelled",
            "cancelled by user",
        ),
    ],
)
def test_other_terminal_events_carry_their_status_and_error(
    event: ExecutionFailed | ExecutionTimedOut | ExecutionCancelled, status: str, error: str
) -> None:
    summary = summarize(event, None, BASE)
    assert summary.status == status
    assert summary.error == error
    assert summary.language == "unknown"


@pytest.mark.parametrize(
    ("changes", "emoji"),
    [
        ({}, ":white_check_mark:"),
        ({"exit_code": 1}, ":warning:"),
        ({"status": "failed", "exit_code": None, "error": "x"}, ":x:"),
        ({"status": "timed_out"}, ":hourglass:"),
        ({"status": "cancelled"}, ":no_entry_sign:"),
    ],
)
def test_the_message_leads_with_a_status_emoji(changes: dict[str, object], emoji: str) -> None:
    message = slack_message(_summary(**changes))
    assert message.text.startswith(emoji)
    header = message.blocks[0]
    assert header["type"] == "header"
    assert header["text"]["text"].startswith(emoji)


def test_the_message_shows_language_duration_exit_code_and_a_link() -> None:
    message = slack_message(_summary())
    fields = [f["text"] for f in message.blocks[1]["fields"]]
    assert fields == [
        "*Status*\n:white_check_mark: completed",
        "*Language*\npython 3.11",
        "*Duration*\n1.23 s",
        "*Exit code*\n0",
    ]
    assert "python 3.11, 1.23 s, exit code 0" in message.text
    context = message.blocks[-1]["elements"][0]["text"]
    assert "<http://127.0.0.1:8000/api/v1/executions/ex-1|ex-1>" in context
    assert "2030-01-02 03:04:05 UTC" in context
    output = next(
        b for b in message.blocks if b.get("text", {}).get("text", "").startswith("*Output*")
    )
    assert output["text"]["text"] == "*Output*\n```45\n```"


def test_program_output_cannot_ping_the_channel_or_break_out_of_the_code_block() -> None:
    hostile = "<!channel> <https://evil.test|click> & ```\n*bold*"
    message = slack_message(_summary(stdout_preview=hostile, error="<@U123> oops"))
    rendered = json.dumps(message.blocks)
    assert "<!channel>" not in rendered
    assert "<https://evil.test" not in rendered
    assert "<@U123>" not in rendered
    assert "&lt;!channel&gt;" in rendered
    output = next(
        b for b in message.blocks if b.get("text", {}).get("text", "").startswith("*Output*")
    )
    body = output["text"]["text"].removeprefix("*Output*\n")
    assert body.startswith("```")
    assert body.endswith("```")
    assert body.count("```") == 2


def test_long_output_is_cut_within_slack_limits() -> None:
    message = slack_message(_summary(stdout_preview="x" * 5000, error="e" * 5000))
    for block in message.blocks:
        text = block.get("text", {}).get("text", "")
        assert len(text) <= 3000
    assert len(message.blocks[0]["text"]["text"]) <= 150


def test_escape_and_duration_formatting() -> None:
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"
    assert format_duration(None) == "n/a"
    assert format_duration(12.4) == "12 ms"
    assert format_duration(1500) == "1.50 s"


def _section(blocks: list[dict[str, Any]], title: str) -> dict[str, Any]:
    return next(b for b in blocks if b.get("text", {}).get("text", "").startswith(title))
