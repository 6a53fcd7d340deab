"""Outbound URLs on spans: no credentials, no query values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integr8scode_telemetry.redaction import redact_request_url, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.example.com/in?token=s3cr3t&x=1",
            "https://hooks.example.com/in?token=REDACTED&x=REDACTED",
        ),
        ("https://user:pw@example.com:8443/p", "https://example.com:8443/p"),
        ("http://[::1]:9000/hook?k=", "http://[::1]:9000/hook?k=REDACTED"),
        ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
        ("https://example.com/a#frag", "https://example.com/a"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_request_hook_overwrites_url_full() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span(
        "POST", attributes={"url.full": "https://h.example/x?sig=abc"}
    ) as span:
        redact_request_url(span, SimpleNamespace(url="https://h.example/x?sig=abc"))
    [finished] = exporter.get_finished_spans()
    assert (finished.attributes or {})["url.full"] == "https://h.example/x?sig=REDACTED"
