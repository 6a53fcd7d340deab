"""Telemetry settings fragment: services compose it into their own settings."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from integr8scode_telemetry.inbound_trace import TrustedUpstreams


class TelemetrySettings(BaseSettings):
    """Where spans go and how many are kept. Reads the standard ``OTEL_*`` variables."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    sdk_disabled: bool = Field(
        default=False, validation_alias=AliasChoices("OTEL_SDK_DISABLED", "sdk_disabled")
    )
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp_endpoint"),
        description="OTLP gRPC endpoint, e.g. http://127.0.0.1:4317. None: spans are dropped.",
    )
    sampler: Literal["parentbased_ratio", "adaptive", "off"] = Field(
        default="parentbased_ratio",
        validation_alias=AliasChoices("INTEGR8SCODE_TRACES_SAMPLER", "sampler"),
    )
    sampler_ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        validation_alias=AliasChoices("OTEL_TRACES_SAMPLER_ARG", "sampler_ratio"),
    )
    adaptive_traces_per_second: float = Field(
        default=50.0,
        gt=0,
        validation_alias=AliasChoices(
            "INTEGR8SCODE_ADAPTIVE_TRACES_PER_SECOND", "adaptive_traces_per_second"
        ),
        description="Budget of the adaptive sampler: root traces kept per second per process.",
    )
    span_encoder: Literal["integr8scode", "sdk"] = Field(
        default="integr8scode",
        validation_alias=AliasChoices("INTEGR8SCODE_OTLP_SPAN_ENCODER", "span_encoder"),
        description="Who writes the OTLP export requests: our encoder (span_encoding.py, "
        "about a quarter of the SDK's CPU per span) or the SDK's own.",
    )
    span_export: Literal["process", "thread"] = Field(
        default="process",
        validation_alias=AliasChoices("INTEGR8SCODE_SPAN_EXPORT", "span_export"),
        description="Where finished spans are encoded and sent: 'process', a child process fed "
        "span records over a pipe (span_pipe.py; off this process's GIL), or 'thread', the "
        "SDK's batch span processor's thread in this process. The SDK encoder needs 'thread'.",
    )
    bsp_max_queue_size: int = Field(
        default=8_192,
        gt=0,
        validation_alias=AliasChoices("OTEL_BSP_MAX_QUEUE_SIZE", "bsp_max_queue_size"),
        description="Finished spans waiting for export at most (the SDK's 2 048 overflowed "
        "in bursts); past it spans are dropped.",
    )
    bsp_max_export_batch_size: int = Field(
        default=512,
        gt=0,
        validation_alias=AliasChoices(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "bsp_max_export_batch_size"
        ),
        description="Spans per export request at most (capped at the queue size). Bigger "
        "requests save little and risk the receiver's 4 MiB message limit.",
    )
    bsp_schedule_delay_ms: int = Field(
        default=1_000,
        gt=0,
        validation_alias=AliasChoices("OTEL_BSP_SCHEDULE_DELAY", "bsp_schedule_delay_ms"),
        description="How long the batch processor waits for a full batch before it exports "
        "what it has.",
    )
    metrics_export_interval_ms: int = Field(
        default=10_000,
        gt=0,
        validation_alias=AliasChoices("OTEL_METRIC_EXPORT_INTERVAL", "metrics_export_interval_ms"),
    )
    environment: str = Field(
        default="local",
        validation_alias=AliasChoices("DEPLOYMENT_ENVIRONMENT", "environment"),
    )
    trace_trusted_upstreams: str = Field(
        default="",
        validation_alias=AliasChoices(
            "INTEGR8SCODE_TRACE_TRUSTED_UPSTREAMS", "trace_trusted_upstreams"
        ),
        description="Peers whose inbound traceparent/tracestate/baggage an HTTP server "
        "continues: comma-separated addresses or CIDRs, or 'all'. Empty: every request starts "
        "a new trace linked to the caller's context.",
    )

    @field_validator("trace_trusted_upstreams")
    @classmethod
    def _parsable_upstreams(cls, value: str) -> str:
        TrustedUpstreams.parse(value)  # raises ValueError naming the bad item
        return value

    @property
    def trusted_upstreams(self) -> TrustedUpstreams:
        """``trace_trusted_upstreams``, parsed."""
        return TrustedUpstreams.parse(self.trace_trusted_upstreams)

    @property
    def tracing_enabled(self) -> bool:
        """False when tracing is switched off by the SDK flag, the sampler or a zero ratio."""
        return not self.sdk_disabled and self.sampler != "off" and self.sampler_ratio > 0.0
