"""ExecutionSaga.accept: validate, then queue once; an invalid request ends at once as failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from integr8scode_coordinator.domain.saga import SagaStatus
from integr8scode_events import ExecutionFailed

if TYPE_CHECKING:
    from conftest import Harness, MakeHarness


async def test_a_valid_request_is_queued_once(harness: Harness) -> None:
    request = harness.request("ex-valid")

    assert await harness.saga.accept(request) is True

    saga = harness.store.sagas["ex-valid"]
    assert saga.status is SagaStatus.QUEUED
    assert saga.request == request
    assert saga.steps == ["validate"]
    assert harness.publisher.events == []  # nothing is published until it runs


async def test_a_redelivered_request_queues_no_second_saga(harness: Harness) -> None:
    request = harness.request("ex-redelivered")
    assert await harness.saga.accept(request)
    first = harness.store.sagas["ex-redelivered"].enqueued_at

    assert await harness.saga.accept(request) is False

    assert list(harness.store.sagas) == ["ex-redelivered"]
    assert harness.store.sagas["ex-redelivered"].enqueued_at == first


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"language": "cobol"}, "language 'cobol' is not available on this coordinator"),
        ({"language_version": "2.7"}, "python 2.7 is not available (have 3.11, 3.12)"),
        ({"timeout_s": 31.0}, "timeout_s 31.0 is above the maximum 30.0"),
        ({"memory_mb": 1024}, "memory_mb 1024 is above the maximum 512"),
    ],
    ids=["language", "version", "timeout", "memory"],
)
async def test_an_invalid_request_fails_with_one_event(
    make_harness: MakeHarness, overrides: dict[str, object], error: str
) -> None:
    harness = make_harness(max_timeout_s=30.0, max_memory_mb=512)
    request = harness.request("ex-invalid", **overrides)  # type: ignore[arg-type]

    assert await harness.saga.accept(request) is False

    saga = harness.store.sagas["ex-invalid"]
    assert saga.status is SagaStatus.FAILED
    assert saga.error == error
    assert saga.steps == ["validate", "finish:failed"]
    [event] = harness.publisher.events
    assert isinstance(event, ExecutionFailed)
    assert event.payload.error_type == "invalid_request"
    assert event.payload.error == error
    assert (event.execution_id, event.user_id) == ("ex-invalid", request.user_id)
    assert event.correlation_id == request.correlation_id
    assert harness.store.published == {"ex-invalid"}
    assert harness.runner.requests == []
    assert harness.slots.reserve_calls == []


async def test_a_redelivered_invalid_request_is_not_reported_twice(harness: Harness) -> None:
    request = harness.request("ex-invalid-twice", language="cobol")
    await harness.saga.accept(request)

    assert await harness.saga.accept(request) is False

    assert len(harness.publisher.events) == 1


async def test_an_invalid_request_left_queued_by_a_crash_fails_on_redelivery(
    harness: Harness,
) -> None:
    # The first delivery queued the saga, then the process died before failing it.
    request = harness.request("ex-crashed", memory_mb=4096)
    harness.saga_doc(request)

    assert await harness.saga.accept(request) is False

    assert harness.store.status("ex-crashed") is SagaStatus.FAILED
    [event] = harness.publisher.events
    assert isinstance(event, ExecutionFailed)
    assert event.payload.error_type == "invalid_request"
    assert await harness.store.oldest_queued(limit=10) == []


async def test_the_limits_at_the_maximum_are_accepted(make_harness: MakeHarness) -> None:
    harness = make_harness(max_timeout_s=10.0, max_memory_mb=256)
    request = harness.request(timeout_s=10.0, memory_mb=256, language_version="3.12")

    assert harness.saga.validate(request) is None


async def test_validate_is_a_saga_step_span(harness: Harness) -> None:
    await harness.saga.accept(harness.request("ex-span"))
    await harness.saga.accept(harness.request("ex-span-bad", language="cobol"))

    good, bad = harness.step_spans("ex-span"), harness.step_spans("ex-span-bad")
    assert set(good) == {"validate"}
    attributes = dict(good["validate"].attributes or {})
    assert attributes == {
        "saga.name": "execution",
        "saga.id": "ex-span",
        "saga.step": "validate",
        "execution.id": "ex-span",
    }
    assert (bad["validate"].attributes or {})["saga.rejected"] == (
        "language 'cobol' is not available on this coordinator"
    )


async def test_a_queued_saga_continues_the_trace_it_was_requested_in(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("kafka.consume") as consume:
        await harness.saga.accept(harness.request("ex-traced"))

    context = consume.get_span_context()
    stored = harness.store.sagas["ex-traced"].trace
    assert stored.traceparent is not None
    assert stored.traceparent.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    validate = harness.step_spans("ex-traced")["validate"]
    assert validate.parent is not None
    assert validate.parent.span_id == context.span_id
