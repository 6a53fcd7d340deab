"""Outbound requests: the trace context withheld on demand, the client span recorded anyway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from integr8scode_telemetry.outbound_trace import (
    trace_context_headers,
    w3c_propagator,
    withheld_trace_context,
)

CONTEXT_HEADERS = {"traceparent", "tracestate", "baggage"}


@pytest.fixture(autouse=True)
def global_propagator() -> Iterator[None]:
    """What ``init_telemetry`` installs, for this test only."""
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(w3c_propagator())
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def client(
    exporter: InMemorySpanExporter,
) -> AsyncIterator[tuple[httpx.AsyncClient, list[httpx.Headers]]]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    received: list[httpx.Headers] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request.headers)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        HTTPXClientInstrumentor.instrument_client(http, tracer_provider=provider)
        yield http, received


async def test_withheld_requests_carry_no_context_but_are_recorded(
    client: tuple[httpx.AsyncClient, list[httpx.Headers]], exporter: InMemorySpanExporter
) -> None:
    http, received = client
    tracer = TracerProvider().get_tracer("test")
    token = otel_context.attach(baggage.set_baggage("tenant", "internal"))
    try:
        with tracer.start_as_current_span("deliver"), withheld_trace_context():
            assert (await http.post("https://receiver.test/hook")).status_code == 200
    finally:
        otel_context.detach(token)
    assert CONTEXT_HEADERS.isdisjoint(received[0].keys())
    [span] = exporter.get_finished_spans()
    assert span.kind is SpanKind.CLIENT


async def test_requests_carry_the_client_span_unless_withheld(
    client: tuple[httpx.AsyncClient, list[httpx.Headers]], exporter: InMemorySpanExporter
) -> None:
    http, received = client
    with withheld_trace_context(withhold=False):
        await http.post("https://receiver.test/hook")
    [span] = exporter.get_finished_spans()
    traceparent = received[0]["traceparent"]
    assert traceparent.split("-")[1] == trace.format_trace_id(span.context.trace_id)
    assert traceparent.split("-")[2] == trace.format_span_id(span.context.span_id)


def test_explicit_headers_pass_an_unrecorded_context_on_unchanged() -> None:
    inbound = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=upstream",
        "baggage": "tenant=internal",
    }
    token = otel_context.attach(propagate.extract(inbound))
    try:
        with withheld_trace_context():  # asked for explicitly: given even inside a withheld scope
            assert trace_context_headers() == inbound
    finally:
        otel_context.detach(token)
    assert trace_context_headers() == {}
