"""The HTTP edge: an untrusted caller's traceparent starts a new trace linked to it; a trusted
upstream's is continued; a tracing-off server passes a trusted context on unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from integr8scode_telemetry.inbound_trace import TrustedUpstreams, caller_span_context
from integr8scode_telemetry.outbound_trace import trace_context_headers
from integr8scode_telemetry.settings import TelemetrySettings
from integr8scode_telemetry.setup import TelemetryHandle, init_telemetry, instrument_fastapi

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
OUTSIDE_PEER = "203.0.113.9"


def traceparent(flags: str) -> str:
    return f"00-{CALLER_TRACE}-{CALLER_SPAN}-{flags}"


@dataclass
class Edge:
    http: httpx.AsyncClient
    exporter: InMemorySpanExporter
    handle: TelemetryHandle

    def finished(self) -> tuple[ReadableSpan, ...]:
        self.handle.force_flush()  # the batch processor exports in the background
        return self.exporter.get_finished_spans()

    def server_spans(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.kind == SpanKind.SERVER]


async def _edge(settings: TelemetrySettings, peer: str) -> AsyncIterator[Edge]:
    exporter = InMemorySpanExporter()
    handle = init_telemetry(
        settings,
        "api",
        "0.0.1",
        set_global=False,
        instrument_libraries=False,
        span_exporter=exporter,
    )
    app = FastAPI()

    @app.post("/api/v1/execute")
    async def execute() -> dict[str, object]:
        # What this request would publish or store: the current context as it propagates.
        return {
            "outbound": trace_context_headers(),
            "baggage": dict(baggage.get_all()),
            "trace_id": trace.format_trace_id(trace.get_current_span().get_span_context().trace_id),
        }

    instrument_fastapi(app, handle)
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
            yield Edge(http, exporter, handle)
    finally:
        handle.shutdown()


@pytest.fixture
async def public_edge() -> AsyncIterator[Edge]:
    async for edge in _edge(TelemetrySettings(), OUTSIDE_PEER):
        yield edge


@pytest.mark.parametrize("flags", ["00", "01"])
async def test_an_outside_traceparent_starts_a_new_linked_trace(
    public_edge: Edge, flags: str
) -> None:
    response = await public_edge.http.post(
        "/api/v1/execute",
        headers={
            "traceparent": traceparent(flags),
            "tracestate": "vendor=caller",
            "baggage": "user.id=forged",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["trace_id"] != CALLER_TRACE
    assert body["baggage"] == {}  # outside baggage is dropped with the rest
    outbound = body["outbound"]
    assert outbound["traceparent"].split("-")[1] == body["trace_id"]
    # Sampled because our sampler decided so, whatever the caller's flags said.
    assert int(outbound["traceparent"].split("-")[3], 16) & 0x01
    assert "tracestate" not in outbound
    assert "baggage" not in outbound

    [server] = public_edge.server_spans()
    assert server.parent is None  # a root: nothing of the caller's trace is its parent
    assert trace.format_trace_id(server.context.trace_id) == body["trace_id"]
    [link] = server.links
    assert trace.format_trace_id(link.context.trace_id) == CALLER_TRACE
    assert trace.format_span_id(link.context.span_id) == CALLER_SPAN
    assert link.context.trace_flags.sampled is (flags == "01")
    assert link.attributes == {"integr8scode.link.reason": "untrusted_caller"}
    assert server.attributes is not None
    assert server.attributes["integr8scode.caller.trace_id"] == CALLER_TRACE


async def test_a_malformed_traceparent_starts_a_new_trace_without_a_link(
    public_edge: Edge,
) -> None:
    response = await public_edge.http.post(
        "/api/v1/execute", headers={"traceparent": "00-not-a-trace-01"}
    )
    assert response.status_code == 200
    [server] = public_edge.server_spans()
    assert server.parent is None
    assert list(server.links) == []
    assert server.attributes is not None
    assert "integr8scode.caller.trace_id" not in server.attributes


async def test_a_request_without_context_is_a_plain_root(public_edge: Edge) -> None:
    response = await public_edge.http.post("/api/v1/execute")
    assert response.status_code == 200
    [server] = public_edge.server_spans()
    assert server.parent is None
    assert list(server.links) == []


@pytest.mark.parametrize("trusted", ["203.0.113.0/24", "10.0.0.1, 203.0.113.9", "all"])
async def test_a_trusted_upstream_is_continued(trusted: str) -> None:
    settings = TelemetrySettings(trace_trusted_upstreams=trusted)
    async for edge in _edge(settings, OUTSIDE_PEER):
        response = await edge.http.post(
            "/api/v1/execute",
            headers={"traceparent": traceparent("01"), "baggage": "tenant=gateway"},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["trace_id"] == CALLER_TRACE
        assert body["baggage"] == {"tenant": "gateway"}
        [server] = edge.server_spans()
        assert server.parent is not None
        assert trace.format_span_id(server.parent.span_id) == CALLER_SPAN
        assert list(server.links) == []


async def test_a_trusted_upstream_that_switches_recording_off_is_obeyed() -> None:
    """Trust means trust: an internal gateway's ``00`` is followed, as before this guard."""
    settings = TelemetrySettings(trace_trusted_upstreams="203.0.113.9")
    async for edge in _edge(settings, OUTSIDE_PEER):
        response = await edge.http.post(
            "/api/v1/execute", headers={"traceparent": traceparent("00")}
        )
        assert response.json()["trace_id"] == CALLER_TRACE
        assert edge.server_spans() == []


@pytest.mark.parametrize(
    "settings",
    [
        TelemetrySettings(sdk_disabled=True, trace_trusted_upstreams="all"),
        TelemetrySettings(sampler="off", trace_trusted_upstreams="all"),
    ],
)
async def test_a_server_with_tracing_off_passes_a_trusted_context_on_unchanged(
    settings: TelemetrySettings,
) -> None:
    async for edge in _edge(settings, OUTSIDE_PEER):
        response = await edge.http.post(
            "/api/v1/execute",
            headers={
                "traceparent": traceparent("01"),
                "tracestate": "vendor=caller",
                "baggage": "tenant=gateway",
            },
        )
        outbound = response.json()["outbound"]
        # Nothing was recorded here, so the next hop's parent is the caller's span itself.
        assert outbound["traceparent"] == traceparent("01")
        assert outbound["tracestate"] == "vendor=caller"
        assert outbound["baggage"] == "tenant=gateway"
        assert edge.finished() == ()


async def test_a_server_with_tracing_off_drops_an_untrusted_context() -> None:
    async for edge in _edge(TelemetrySettings(sdk_disabled=True), OUTSIDE_PEER):
        response = await edge.http.post(
            "/api/v1/execute", headers={"traceparent": traceparent("01")}
        )
        assert response.json()["outbound"] == {}


def test_upstreams_parse() -> None:
    assert TrustedUpstreams.parse("") == TrustedUpstreams()
    assert TrustedUpstreams.parse(" ALL ").everyone
    parsed = TrustedUpstreams.parse("10.0.0.0/8, 192.168.1.7 ,fd00::/8")
    assert [str(n) for n in parsed.networks] == ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),  # IPv4-mapped, as a dual-stack socket reports it
        ("fd00::1", True),
        ("11.0.0.1", False),
        ("testclient", False),
        (None, False),
    ],
)
def test_upstreams_match_peers(peer: str | None, trusted: bool) -> None:
    assert TrustedUpstreams.parse("10.0.0.0/8,fd00::/8").trusts(peer) is trusted
    assert not TrustedUpstreams.parse("").trusts(peer)
    assert TrustedUpstreams.parse("all").trusts(peer)


@pytest.mark.parametrize(
    ("value", "message"),
    [("gateway.internal", "not an IP address or CIDR"), ("all,10.0.0.1", "can't be combined")],
)
def test_bad_upstreams_are_refused_at_start(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TelemetrySettings(trace_trusted_upstreams=value)


def test_upstreams_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTEGR8SCODE_TRACE_TRUSTED_UPSTREAMS", "10.0.0.0/8")
    assert TelemetrySettings().trusted_upstreams.trusts("10.9.9.9")


def test_caller_context_parsing() -> None:
    context = caller_span_context([(b"traceparent", traceparent("01").encode())])
    assert context is not None
    assert context.is_remote
    assert trace.format_trace_id(context.trace_id) == CALLER_TRACE
    zero_trace = b"00-" + b"0" * 32 + b"-" + b"1" * 16 + b"-01"
    assert caller_span_context([(b"traceparent", zero_trace)]) is None
    assert caller_span_context([]) is None
