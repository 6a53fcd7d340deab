"""``execution.requested`` grew optional fields (issue 14): old events still decode, new ones
round-trip, and the new fields refuse what they must."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from integr8scode_events.codec import decode_event
from integr8scode_events.envelope import ProducerInfo
from integr8scode_events.events import ExecutionRequested
from integr8scode_events.payloads import (
    ExecutionFile,
    ExecutionLimits,
    ExecutionRequestedPayload,
)

OLD_EVENT = {
    "event_id": "6f1f7a4e-3f6b-4a43-9d0e-2f1f1b0c9a11",
    "event_type": "execution.requested",
    "schema_version": 1,
    "occurred_at": "2026-01-01T00:00:00Z",
    "producer": {"service": "integr8scode-backend", "version": "0.1.0"},
    "correlation_id": "e1",
    "execution_id": "e1",
    "user_id": "u1",
    "payload": {
        "script": "print(1)",
        "language": "python",
        "language_version": "3.11",
        "stdin": "",
        "limits": {"timeout_s": 5, "memory_mb": 128},
    },
}


def test_an_event_from_before_the_new_fields_decodes_with_their_defaults() -> None:
    event = decode_event(json.dumps(OLD_EVENT).encode())
    assert isinstance(event, ExecutionRequested)
    payload = event.payload
    assert payload.args == ()
    assert payload.files == ()
    assert payload.expected_stdout is None
    assert payload.stdin_encoding == "utf-8"
    assert payload.limits.cpu_time_s is None
    assert payload.limits.max_processes is None
    assert payload.limits.max_output_kb is None


def test_the_new_fields_round_trip() -> None:
    payload = ExecutionRequestedPayload(
        script="print(1)",
        language="python",
        language_version="3.11",
        stdin="AAE=",
        stdin_encoding="base64",
        limits=ExecutionLimits(
            timeout_s=2, memory_mb=64, cpu_time_s=1, max_processes=8, max_output_kb=4
        ),
        args=("a", "b c"),
        files=(ExecutionFile(name="data/in.txt", content="aGk=", encoding="base64"),),
        expected_stdout="1\n",
    )
    event = ExecutionRequested(
        producer=ProducerInfo(service="t", version="0"),
        correlation_id="e2",
        execution_id="e2",
        payload=payload,
    )
    decoded = decode_event(event.to_bytes())
    assert decoded == event


@pytest.mark.parametrize(
    "limits",
    [{"cpu_time_s": 0}, {"max_processes": 0}, {"max_output_kb": -1}],
)
def test_new_limits_must_be_positive(limits: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        ExecutionLimits(timeout_s=1, memory_mb=1, **limits)


def test_a_file_encoding_is_one_of_two() -> None:
    with pytest.raises(ValidationError):
        ExecutionFile(name="a", content="x", encoding="hex")
