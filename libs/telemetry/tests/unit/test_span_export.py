"""The exporter the settings choose, and what ours puts on the wire: an in-process gRPC server
stands in for the collector (the real one: the integration tests that find spans in Jaeger)."""

from __future__ import annotations

from typing import Any

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.fake_collector import FakeCollector

from integr8scode_telemetry.settings import TelemetrySettings
from integr8scode_telemetry.span_export import (
    BytesOTLPSpanExporter,
    batch_processor,
    otlp_span_exporter,
)


def _spans() -> tuple[Any, ...]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("integr8scode_events")
    for offset in range(3):
        with tracer.start_as_current_span(
            "publish t", attributes={"messaging.kafka.offset": offset}
        ):
            pass
    return exporter.get_finished_spans()


def test_the_collector_receives_the_sdk_encoders_message(collector: FakeCollector) -> None:
    exporter = BytesOTLPSpanExporter(endpoint=f"http://127.0.0.1:{collector.port}", insecure=True)
    spans = _spans()
    try:
        result = exporter.export(spans)
    finally:
        exporter.shutdown()

    assert result is SpanExportResult.SUCCESS
    [received] = collector.requests
    assert ExportTraceServiceRequest.FromString(received) == encode_spans(spans)


def test_a_refused_export_is_a_failure(collector: FakeCollector) -> None:
    collector.fail_with = grpc.StatusCode.INVALID_ARGUMENT  # not retryable: answered at once
    exporter = BytesOTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{collector.port}", insecure=True, timeout=5
    )
    try:
        result = exporter.export(_spans())
    finally:
        exporter.shutdown()

    assert result is SpanExportResult.FAILURE
    assert collector.requests == []


def test_the_settings_choose_the_exporter() -> None:
    endpoint = "http://127.0.0.1:4317"
    ours = otlp_span_exporter(TelemetrySettings(otlp_endpoint=endpoint))
    sdk = otlp_span_exporter(TelemetrySettings(otlp_endpoint=endpoint, span_encoder="sdk"))
    try:
        assert isinstance(ours, BytesOTLPSpanExporter)
        assert type(sdk) is OTLPSpanExporter
    finally:
        for exporter in (ours, sdk):
            assert exporter is not None
            exporter.shutdown()
    assert otlp_span_exporter(TelemetrySettings(otlp_endpoint=None)) is None
    assert otlp_span_exporter(TelemetrySettings(otlp_endpoint=endpoint, sampler="off")) is None


def test_the_batch_processor_is_sized_by_the_settings() -> None:
    settings = TelemetrySettings(
        bsp_max_queue_size=100, bsp_max_export_batch_size=500, bsp_schedule_delay_ms=250
    )
    processor = batch_processor(InMemorySpanExporter(), settings)
    try:
        inner = processor._batch_processor
        assert inner._max_queue_size == 100
        assert inner._max_export_batch_size == 100  # capped at the queue
        assert inner._schedule_delay_millis == 250
    finally:
        processor.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK


def test_the_batch_settings_read_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4096")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "256")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    monkeypatch.setenv("INTEGR8SCODE_OTLP_SPAN_ENCODER", "sdk")

    settings = TelemetrySettings()

    assert (settings.bsp_max_queue_size, settings.bsp_max_export_batch_size) == (4096, 256)
    assert (settings.bsp_schedule_delay_ms, settings.span_encoder) == (100, "sdk")
