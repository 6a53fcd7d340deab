"""start_current_span does what Tracer.start_as_current_span does for the library's spans."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from integr8scode_spans import start_current_span

Start = Callable[[trace.Tracer, bool], AbstractContextManager[trace.Span]]


def _ours(tracer: trace.Tracer, status_on_exception: bool) -> AbstractContextManager[trace.Span]:
    return start_current_span(
        tracer,
        "publish t",
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka"},
        record_exception=False,
        set_status_on_exception=status_on_exception,
    )


def _sdk(tracer: trace.Tracer, status_on_exception: bool) -> AbstractContextManager[trace.Span]:
    return tracer.start_as_current_span(
        "publish t",
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka"},
        record_exception=False,
        set_status_on_exception=status_on_exception,
    )


@pytest.fixture
def spans() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("unit"), exporter
    provider.shutdown()


def _shape(span: ReadableSpan) -> tuple[Any, ...]:
    return (
        span.name,
        span.kind,
        dict(span.attributes or {}),
        span.status.status_code,
        span.status.description,
        len(span.events),
        span.end_time is not None,
    )


def _run(start: Start, tracer: trace.Tracer, error: BaseException | None, status: bool) -> None:
    outside = trace.get_current_span()

    def body() -> None:
        with start(tracer, status) as span:
            assert trace.get_current_span() is span
            if error is not None:
                raise error

    if error is None:
        body()
    else:
        with pytest.raises(type(error)):
            body()
    assert trace.get_current_span() is outside


@pytest.mark.parametrize(
    "error",
    [None, ValueError("broker refused"), asyncio.CancelledError()],
    ids=["ok", "exception", "cancelled"],
)
@pytest.mark.parametrize("status_on_exception", [True, False])
def test_the_same_span_as_start_as_current_span(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
    error: BaseException | None,
    status_on_exception: bool,
) -> None:
    tracer, exporter = spans
    _run(_sdk, tracer, error, status_on_exception)
    _run(_ours, tracer, error, status_on_exception)

    sdk, ours = exporter.get_finished_spans()

    assert _shape(ours) == _shape(sdk)
    if error is not None and status_on_exception and isinstance(error, Exception):
        assert ours.status.status_code is StatusCode.ERROR
        assert ours.status.description == "ValueError: broker refused"


@pytest.mark.parametrize(
    "error",
    [None, ValueError("sandbox refused"), asyncio.CancelledError()],
    ids=["ok", "exception", "cancelled"],
)
def test_recording_the_exception_as_the_sdk_does(
    spans: tuple[trace.Tracer, InMemorySpanExporter], error: BaseException | None
) -> None:
    tracer, exporter = spans

    _run(lambda t, _: t.start_as_current_span("saga.step", start_time=1_000), tracer, error, True)
    _run(
        lambda t, _: start_current_span(t, "saga.step", start_time=1_000),
        tracer,
        error,
        True,
    )

    sdk, ours = exporter.get_finished_spans()

    assert _shape(ours) == _shape(sdk)
    assert ours.kind is SpanKind.INTERNAL
    assert ours.start_time == sdk.start_time == 1_000
    assert [(e.name, dict(e.attributes or {}).get("exception.type")) for e in ours.events] == [
        (e.name, dict(e.attributes or {}).get("exception.type")) for e in sdk.events
    ]
    if isinstance(error, Exception):
        assert [e.name for e in ours.events] == ["exception"]
