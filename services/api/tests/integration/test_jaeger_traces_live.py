"""The Jaeger adapter against the running Jaeger: spans made here with the OTel SDK, exported to
the collector under a test service name, read back through ``JaegerTraces`` once Jaeger has
them, and derived into a timeline; an unknown trace is None, an unreachable query API is 503."""

from __future__ import annotations

import uuid

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from tests.polling import eventually
from tests.stack import local_stack

from integr8scode_api.adapters.jaeger_traces import JaegerTraces
from integr8scode_api.domain.errors import DependencyUnavailableError
from integr8scode_api.domain.timeline import derive_timeline
from integr8scode_api.domain.trace import TraceSpan

STACK = local_stack()


def record_a_request(service: str) -> tuple[str, str]:
    """A request span with a rate-limit check and a publish, like the api's; (trace, exec id)."""
    execution_id = uuid.uuid4().hex
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=STACK.otlp_grpc, insecure=True))
    )
    tracer = provider.get_tracer("timeline-test")
    with tracer.start_as_current_span(
        "POST /api/v1/execute", kind=SpanKind.SERVER, attributes={"execution.id": execution_id}
    ) as root:
        with tracer.start_as_current_span("rate_limit.check"):
            pass
        with tracer.start_as_current_span(
            "publish execution_requests",
            kind=SpanKind.PRODUCER,
            attributes={"event.type": "execution.requested", "execution.id": execution_id},
        ):
            pass
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x"), execution_id


async def test_the_adapter_reads_a_trace_exported_through_the_collector() -> None:
    service = f"timeline-test-{uuid.uuid4().hex[:8]}"
    trace_id, execution_id = record_a_request(service)
    async with httpx.AsyncClient(base_url=STACK.jaeger_query, timeout=3) as http:
        traces = JaegerTraces(http, ui_url="http://jaeger.example")

        async def all_three() -> list[TraceSpan] | None:
            spans = await traces.trace(trace_id)
            return spans if spans is not None and len(spans) == 3 else None

        spans = await eventually(all_three, timeout_s=30, what="the trace in Jaeger")
        assert await traces.trace(uuid.uuid4().hex) is None  # a trace Jaeger never saw

    by_name = {s.name: s for s in spans}
    root = by_name["POST /api/v1/execute"]
    assert {s.service for s in spans} == {service}
    assert (root.kind, root.parent_id) == ("server", None)
    assert by_name["rate_limit.check"].parent_id == root.span_id
    assert by_name["publish execution_requests"].kind == "producer"
    assert by_name["publish execution_requests"].attr("execution.id") == execution_id
    assert by_name["publish execution_requests"].start_us >= root.start_us
    # A test service name is not the api's, so no phase is claimed from these spans.
    timeline = derive_timeline(execution_id, trace_id, spans, terminal=True, jaeger=None)
    assert timeline.phases == []
    assert not timeline.complete
    assert len(timeline.spans) == 3


async def test_an_unreachable_query_api_is_dependency_unavailable() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:1", timeout=1) as http:
        traces = JaegerTraces(http, ui_url="http://jaeger.example")
        with pytest.raises(DependencyUnavailableError, match="Jaeger"):
            await traces.trace(uuid.uuid4().hex)
