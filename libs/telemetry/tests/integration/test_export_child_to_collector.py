"""Spans exported through the export child (the default) reach Jaeger through the real
collector, every one of them: the spans created equal the spans received."""

from __future__ import annotations

import uuid

from opentelemetry import trace
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.stack import local_stack

from integr8scode_telemetry import TelemetrySettings, init_telemetry
from integr8scode_telemetry.span_pipe import PipeSpanProcessor

STACK = local_stack()
TRACES = 4
CHILDREN = 150  # per trace: more spans than one export request (512) in all


async def test_every_span_created_is_received() -> None:
    service = f"export-child-it-{uuid.uuid4().hex[:6]}"
    handle = init_telemetry(
        TelemetrySettings(otlp_endpoint=STACK.otlp_grpc),
        service,
        "it",
        set_global=False,
        instrument_libraries=False,
    )
    assert isinstance(handle.span_processor, PipeSpanProcessor)
    trace_ids = []
    try:
        for t in range(TRACES):
            with handle.tracer.start_as_current_span(f"root {t}") as root:
                trace_ids.append(trace.format_trace_id(root.get_span_context().trace_id))
                for c in range(CHILDREN):
                    with handle.tracer.start_as_current_span(
                        "child", attributes={"n": c, "trace": t}
                    ):
                        pass
    finally:
        handle.shutdown()  # flushes through the child, which then exits

    stats = handle.span_export_stats()
    assert stats is not None
    created = TRACES * (CHILDREN + 1)
    assert (stats.queued, stats.exported) == (created, created)
    assert (stats.dropped, stats.failed, stats.lost, stats.waiting) == (0, 0, 0, 0)

    def whole(found: JaegerTrace) -> bool:
        return len(found.spans) >= CHILDREN + 1

    received = 0
    for trace_id in trace_ids:
        found = await wait_for_trace(STACK.jaeger_query, trace_id, until=whole)
        assert {span.service for span in found.spans} == {service}
        assert sorted(span.tag("n") for span in found.named("child")) == list(range(CHILDREN))
        received += len(found.spans)
    assert received == created
