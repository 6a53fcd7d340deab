"""Background work leaves no trace of its own; work it does for one execution or message joins
that execution's trace.

A poll, a lease renewal, an outbox sweep, index creation at start-up, the session ends at
shutdown, a readiness probe's ping: none of these belongs to a request, so the client spans the
libraries would make for them (PyMongo, HTTPX) would each start a one-span root trace. Run them
under ``untraced()`` (or decorate the pass with ``untraced_task``): the instrumentations see the
suppression flag of the OpenTelemetry context and make no span.

When a pass finds real work for one execution or message (a lost run to fail, an entry to
republish), that work runs under ``resume_trace(parent)`` with the span context stored with the
execution or message (``StoredTraceContext.span_context`` of ``integr8scode_events``, which
this library does not import): its spans, client spans included, go into that trace. Without a
usable stored context the work stays untraced rather than starting a root trace.

Only the suppression flag is used, so the process's own spans (``tracer.start_span``) are not
affected: a pass must not start spans of its own outside ``resume_trace``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation as _suppress

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def untraced() -> Iterator[None]:
    """Run the block with client instrumentation (Mongo, HTTP) suppressed: no spans, so no
    root traces, from housekeeping."""
    with _suppress():
        yield


def untraced_task(
    function: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate an async function (one pass of a background loop) to run ``untraced()``."""

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with untraced():
            return await function(*args, **kwargs)

    return wrapper


@contextmanager
def resume_trace(parent: trace.SpanContext | None) -> Iterator[bool]:
    """Continue the trace of a stored span context for work done on its behalf by a background
    pass: ``parent`` becomes the parent of what the block starts, and instrumentation is on
    again inside it (even under ``untraced()``). Yields True when it was usable; False when it
    was None or invalid, and the block then runs ``untraced()``."""
    if parent is None or not parent.is_valid:
        with untraced():
            yield False
        return
    # On a fresh context (not the current one): the caller's suppression flag, span and
    # baggage are not inherited; only the stored span is.
    stored = trace.set_span_in_context(trace.NonRecordingSpan(parent), context.Context())
    token = context.attach(stored)
    try:
        yield True
    finally:
        context.detach(token)
