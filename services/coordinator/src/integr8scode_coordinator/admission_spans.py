"""The queue wait and the admission of one execution, in that execution's trace.

The admission pass itself (reading the queue, counting the slots users hold) belongs to no
single execution and runs untraced. Once a slot is reserved for an execution, its admission is
traced under the context the saga stored when it was queued (the consume span of its
``execution.requested``), before ``saga.execution``:

- ``saga.queue_wait``: from ``enqueued_at`` to the start of the successful admission (explicit
  start and end times; the span covers time nobody was working on the execution);
- ``saga.admit``: from the start of the slot reservation to the claim, wrapping the claim's Mongo
  calls (and the slot's release when another instance won the claim).

Attempts that found no slot (the cluster full, the user at their cap) are not traced: while the
cluster is full they repeat on every pass, and their spans would bury the execution's trace.
Their time is part of the queue wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from opentelemetry import trace
from opentelemetry.trace import Span

from integr8scode_coordinator.domain.saga import SAGA_NAME, Saga
from integr8scode_spans import start_current_span, start_span
from integr8scode_telemetry import attributes as a
from integr8scode_telemetry import resume_trace

QUEUE_WAIT_SPAN = "saga.queue_wait"
ADMIT_SPAN = "saga.admit"
QUEUE_WAIT_MS = "saga.queue_wait_ms"
ADMIT_OUTCOME = "saga.admit.outcome"
OWNER = "saga.owner"


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


@contextmanager
def admission_spans(
    tracer: trace.Tracer, saga: Saga, owner: str, started_ns: int | None = None
) -> Iterator[Span]:
    """Record the queue wait of ``saga`` and open its ``saga.admit`` span (current inside the
    block, started at ``started_ns``, by default now). Without a stored context the block runs
    untraced and gets a non-recording span: background work starts no root trace."""
    started = started_ns if started_ns is not None else time.time_ns()
    with resume_trace(saga.trace.span_context) as resumed:
        if not resumed:
            yield trace.INVALID_SPAN
            return
        common = {
            a.SAGA_NAME: SAGA_NAME,
            a.SAGA_ID: saga.execution_id,
            a.EXECUTION_ID: saga.execution_id,
            a.USER_ID: saga.user_id,
        }
        enqueued = min(_ns(saga.enqueued_at), started)  # clocks of two instances may disagree
        wait = start_span(
            tracer,
            QUEUE_WAIT_SPAN,
            kind=trace.SpanKind.INTERNAL,
            start_time=enqueued,
            attributes={**common, QUEUE_WAIT_MS: (started - enqueued) / 1_000_000},
        )
        wait.end(end_time=started)
        with start_current_span(
            tracer,
            ADMIT_SPAN,
            start_time=started,
            attributes={**common, OWNER: owner},
        ) as span:
            yield span
