"""init_telemetry: resource attributes, export, the off switch, and an idempotent shutdown."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integr8scode_telemetry.settings import TelemetrySettings
from integr8scode_telemetry.setup import TelemetryHandle, init_telemetry


class CountingExporter(InMemorySpanExporter):
    def __init__(self) -> None:
        super().__init__()
        self.exports = 0
        self.shutdowns = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exports += 1
        return super().export(spans)

    def shutdown(self) -> None:
        self.shutdowns += 1
        super().shutdown()


def _init(settings: TelemetrySettings, exporter: InMemorySpanExporter) -> TelemetryHandle:
    return init_telemetry(
        settings,
        "coordinator",
        "1.2.3",
        set_global=False,
        instrument_libraries=False,
        span_exporter=exporter,
    )


def test_spans_carry_the_service_resource() -> None:
    exporter = InMemorySpanExporter()
    handle = _init(TelemetrySettings(environment="ci"), exporter)
    try:
        with handle.tracer.start_as_current_span("saga.step"):
            pass
        assert handle.force_flush()
        spans = exporter.get_finished_spans()
    finally:
        handle.shutdown()

    assert [s.name for s in spans] == ["saga.step"]
    resource = spans[0].resource.attributes
    assert resource["service.name"] == "coordinator"
    assert resource["service.version"] == "1.2.3"
    assert resource["service.namespace"] == "integr8scode"
    assert resource["deployment.environment"] == "ci"
    instance = resource["service.instance.id"]
    assert isinstance(instance, str)
    assert instance


def test_each_init_gets_its_own_instance_id() -> None:
    first = _init(TelemetrySettings(), InMemorySpanExporter())
    second = _init(TelemetrySettings(), InMemorySpanExporter())
    try:
        ids = {
            h.tracer_provider.resource.attributes["service.instance.id"] for h in (first, second)
        }
    finally:
        first.shutdown()
        second.shutdown()
    assert len(ids) == 2


@pytest.mark.parametrize(
    "settings",
    [
        TelemetrySettings(sdk_disabled=True),
        TelemetrySettings(sampler_ratio=0.0),
        TelemetrySettings(sampler="off"),
    ],
)
def test_disabled_tracing_exports_nothing(settings: TelemetrySettings) -> None:
    exporter = CountingExporter()
    handle = _init(settings, exporter)
    try:
        with handle.tracer.start_as_current_span("request") as span:
            assert not span.is_recording()
        handle.force_flush()
    finally:
        handle.shutdown()
    assert exporter.get_finished_spans() == ()
    assert exporter.exports == 0


def test_without_endpoint_or_exporter_spans_are_dropped_locally() -> None:
    handle = init_telemetry(
        TelemetrySettings(), "api", "0.1.0", set_global=False, instrument_libraries=False
    )
    try:
        # Sampled and recorded (so attributes are cheap to reason about), but exported nowhere.
        with handle.tracer.start_as_current_span("request") as span:
            assert span.is_recording()
        assert handle.force_flush()
        # No processor at all: nothing queues up, nothing tries to connect anywhere.
        assert handle.tracer_provider._active_span_processor._span_processors == ()
    finally:
        handle.shutdown()


def test_shutdown_is_idempotent(caplog: pytest.LogCaptureFixture) -> None:
    exporter = CountingExporter()
    handle = _init(TelemetrySettings(), exporter)
    with handle.tracer.start_as_current_span("last words"):
        pass

    handle.shutdown()
    # The batch processor flushes on shutdown: the span got out.
    assert [s.name for s in exporter.get_finished_spans()] == ["last words"]
    with caplog.at_level(logging.WARNING):
        handle.shutdown()

    assert exporter.shutdowns == 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
