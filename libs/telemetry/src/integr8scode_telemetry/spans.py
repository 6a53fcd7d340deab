"""Two small helpers where they pay: attributes on the current span, and a span with attributes
that records exceptions and marks itself as an error."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

AttributeMap = Mapping[str, AttributeValue | None]


def _clean(attributes: AttributeMap | None) -> dict[str, AttributeValue]:
    return {k: v for k, v in (attributes or {}).items() if v is not None}


def set_span_attributes(attributes: AttributeMap) -> None:
    """Add attributes (``None`` values skipped) to the current span, if it records."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(_clean(attributes))


@cache
def _lean_start() -> Callable[..., Span]:
    """libs/spans' ``start_span``, imported on the first span: it loads the OpenTelemetry SDK,
    which modules that only name attributes or open a span must not pull in (domain code
    imports this module; tests/unit/test_light_imports.py)."""
    from integr8scode_spans import start_span as start_lean_span  # noqa: PLC0415

    return start_lean_span


@contextmanager
def start_span(
    name: str,
    attributes: AttributeMap | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    tracer: trace.Tracer | None = None,
) -> Iterator[Span]:
    """A current span with attributes; an escaping exception is recorded and sets ERROR. With
    the SDK's own tracer the span is a lean one (libs/spans)."""
    active = tracer or trace.get_tracer("integr8scode")
    span = _lean_start()(
        active,
        name,
        kind=kind,
        attributes=_clean(attributes),
        record_exception=False,
        set_status_on_exception=False,
    )
    with trace.use_span(
        span, end_on_exit=True, record_exception=False, set_status_on_exception=False
    ):
        try:
            yield span
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
