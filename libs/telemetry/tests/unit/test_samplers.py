"""Samplers: water-filling, the adaptive sampler on simulated traffic, parent-based wiring."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, ParentBased, Sampler
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from integr8scode_telemetry.samplers import AdaptiveSampler, build_sampler, water_fill
from integr8scode_telemetry.settings import TelemetrySettings

BUSY = "/api/v1/execute"
QUIET = "/api/v1/languages"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- water_fill -----------------------------------------------------------------------------


def test_water_fill_keeps_quiet_keys_whole_and_thins_busy_ones() -> None:
    probabilities = water_fill({"busy": 1000.0, "quiet": 2.0, "medium": 30.0}, budget=50.0)

    assert probabilities["quiet"] == 1.0
    # After quiet (2) the 48 left split evenly: medium's share is 24 < 30, so it is thinned too.
    assert probabilities["medium"] == pytest.approx(24.0 / 30.0)
    assert probabilities["busy"] == pytest.approx(24.0 / 1000.0)


def test_water_fill_sum_of_kept_rates_never_exceeds_budget() -> None:
    rng = random.Random(7)
    for _ in range(200):
        rates = {f"k{i}": rng.uniform(0.0, 500.0) for i in range(rng.randint(1, 20))}
        budget = rng.uniform(1.0, 300.0)
        probabilities = water_fill(rates, budget)
        kept = sum(rates[k] * p for k, p in probabilities.items())
        assert kept <= budget * (1 + 1e-9)
        assert kept == pytest.approx(min(budget, sum(rates.values())))
        assert all(0.0 <= p <= 1.0 for p in probabilities.values())


def test_water_fill_under_budget_keeps_everything() -> None:
    assert water_fill({"a": 10.0, "b": 20.0, "idle": 0.0}, budget=50.0) == {
        "a": 1.0,
        "b": 1.0,
        "idle": 1.0,
    }


# --- AdaptiveSampler on simulated traffic ---------------------------------------------------


@dataclass
class Window:
    kept: int = 0
    kept_quiet: int = 0
    quiet: int = 0


def _simulate(
    sampler: AdaptiveSampler, clock: FakeClock, seconds: int, rng: random.Random
) -> Iterator[tuple[int, str, bool]]:
    """1000 root spans/s on BUSY and 2/s on QUIET; yields (second, route, kept)."""
    for ms in range(seconds * 1000):
        clock.now = ms / 1000.0
        routes = [BUSY] if ms % 500 else [BUSY, QUIET]
        for route in routes:
            result = sampler.should_sample(
                None, rng.getrandbits(128), "GET", attributes={"http.route": route}
            )
            yield ms // 1000, route, result.decision is Decision.RECORD_AND_SAMPLE


def test_adaptive_sampler_holds_the_budget_and_never_starves_the_quiet_route() -> None:
    clock = FakeClock()
    sampler = AdaptiveSampler(50.0, window_s=5.0, clock=clock)
    windows: dict[int, Window] = {}

    for second, route, kept in _simulate(sampler, clock, 60, random.Random(42)):
        window = windows.setdefault(second // 5, Window())
        window.kept += kept
        if route == QUIET:
            window.quiet += 1
            window.kept_quiet += kept

    # The first window knows no rates yet and keeps everything.
    assert windows[0].kept > 4000
    later = [windows[i] for i in range(1, 12)]
    kept_rate = sum(w.kept for w in later) / (len(later) * 5.0)
    assert 40.0 <= kept_rate <= 60.0
    for window in later:
        assert 40.0 <= window.kept / 5.0 <= 60.0
    assert sum(w.kept_quiet for w in windows.values()) == sum(w.quiet for w in windows.values())
    assert sampler.probability(QUIET) == 1.0
    assert sampler.probability(BUSY) == pytest.approx(0.048, rel=0.05)


@pytest.mark.parametrize(
    "attributes",
    [
        {"http.route": BUSY, "http.response.status_code": 500},
        {"http.route": BUSY, "http.status_code": 503},
        {"http.route": BUSY, "error.type": "TimeoutError"},
    ],
)
def test_adaptive_sampler_always_keeps_failed_spans(attributes: dict[str, str | int]) -> None:
    clock = FakeClock()
    sampler = AdaptiveSampler(50.0, window_s=5.0, clock=clock)
    rng = random.Random(1)
    for _ in _simulate(sampler, clock, 10, rng):
        pass
    assert sampler.probability(BUSY) < 0.1

    decisions = [
        sampler.should_sample(None, rng.getrandbits(128), "GET", attributes=attributes).decision
        for _ in range(500)
    ]
    assert all(d is Decision.RECORD_AND_SAMPLE for d in decisions)


def test_adaptive_sampler_thins_a_busy_route_with_a_client_error() -> None:
    clock = FakeClock()
    sampler = AdaptiveSampler(50.0, window_s=5.0, clock=clock)
    rng = random.Random(2)
    for _ in _simulate(sampler, clock, 10, rng):
        pass
    kept = sum(
        sampler.should_sample(
            None,
            rng.getrandbits(128),
            "GET",
            attributes={"http.route": BUSY, "http.response.status_code": 404},
        ).decision
        is Decision.RECORD_AND_SAMPLE
        for _ in range(1000)
    )
    assert kept < 150


def test_adaptive_decision_is_deterministic_per_trace_id() -> None:
    clock = FakeClock()
    first = AdaptiveSampler(50.0, window_s=5.0, clock=clock)
    second = AdaptiveSampler(50.0, window_s=5.0, clock=clock)
    for sampler in (first, second):
        clock.now = 0.0
        for _ in _simulate(sampler, clock, 10, random.Random(3)):
            pass
    probability = first.probability(BUSY)
    assert 0.0 < probability < 1.0

    rng = random.Random(4)
    trace_ids = [rng.getrandbits(128) for _ in range(300)]
    attributes = {"http.route": BUSY}
    once = [first.should_sample(None, t, "GET", attributes=attributes).decision for t in trace_ids]
    again = [first.should_sample(None, t, "GET", attributes=attributes).decision for t in trace_ids]
    other = [
        second.should_sample(None, t, "GET", attributes=attributes).decision for t in trace_ids
    ]
    assert once == again == other
    expected = [
        Decision.RECORD_AND_SAMPLE
        if (t & ((1 << 64) - 1)) < probability * ((1 << 64) - 1)
        else Decision.DROP
        for t in trace_ids
    ]
    assert once == expected
    assert Decision.DROP in once
    assert Decision.RECORD_AND_SAMPLE in once


def test_adaptive_sampler_records_the_probability_on_kept_spans() -> None:
    sampler = AdaptiveSampler(50.0, clock=FakeClock())
    result = sampler.should_sample(None, 1, "GET", attributes={"http.route": QUIET, "a": 1})
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert result.attributes == {"http.route": QUIET, "a": 1, "sampling.probability": 1.0}


def test_adaptive_sampler_keys_by_span_name_without_a_route() -> None:
    clock = FakeClock()
    sampler = AdaptiveSampler(10.0, window_s=1.0, clock=clock)
    for ms in range(1000):
        clock.now = ms / 1000.0
        sampler.should_sample(None, ms, "busy-job")
    clock.now = 1.0
    sampler.should_sample(None, 1, "busy-job")
    assert sampler.probability("busy-job") == pytest.approx(0.01, rel=0.01)
    assert sampler.probability("never-seen") == 1.0


def test_keys_past_the_cap_share_the_budget_instead_of_escaping_it() -> None:
    clock = FakeClock()
    sampler = AdaptiveSampler(10.0, window_s=1.0, clock=clock, max_keys=5)
    rng = random.Random(5)
    for second in range(3):
        kept = 0
        for i in range(1000):
            clock.now = second + i / 1000.0
            # A fresh name per root span (an unbounded key space) must not bypass the budget.
            result = sampler.should_sample(None, rng.getrandbits(128), f"job-{second}-{i}")
            kept += result.decision is Decision.RECORD_AND_SAMPLE
        if second > 0:
            assert kept < 100


def test_adaptive_sampler_rejects_a_non_positive_budget() -> None:
    with pytest.raises(ValueError, match="positive"):
        AdaptiveSampler(0.0)


# --- build_sampler --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        TelemetrySettings(sdk_disabled=True),
        TelemetrySettings(sampler="off"),
        TelemetrySettings(sampler_ratio=0.0),
        TelemetrySettings(sampler="adaptive", sampler_ratio=0.0),
        TelemetrySettings(sampler="adaptive", sdk_disabled=True),
    ],
)
def test_build_sampler_is_always_off_when_tracing_is_disabled(settings: TelemetrySettings) -> None:
    assert build_sampler(settings) is ALWAYS_OFF


HALFWAY = 1 << 63  # a trace id whose low 64 bits sit in the middle of the ratio range


@pytest.mark.parametrize(
    ("settings", "halfway_sampled", "probability"),
    [
        (TelemetrySettings(), True, None),
        (TelemetrySettings(sampler_ratio=0.25), False, None),
        (TelemetrySettings(sampler_ratio=0.75), True, None),
        (TelemetrySettings(sampler="adaptive"), True, 1.0),
    ],
)
def test_build_sampler_is_parent_based_otherwise(
    settings: TelemetrySettings, halfway_sampled: bool, probability: float | None
) -> None:
    sampler = build_sampler(settings)
    assert isinstance(sampler, ParentBased)
    # A root span is decided by the configured root sampler.
    result = sampler.should_sample(None, HALFWAY, "GET", attributes={"http.route": QUIET})
    assert (result.decision is Decision.RECORD_AND_SAMPLE) is halfway_sampled
    attributes = dict(result.attributes or {})
    assert attributes.get("sampling.probability") == probability


def _provider(sampler: Sampler) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _remote_parent(sampled: bool) -> trace.Span:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return NonRecordingSpan(
        SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0xB7AD6B7169203331,
            is_remote=True,
            trace_flags=flags,
        )
    )


@pytest.mark.parametrize("sampled", [True, False])
def test_children_follow_their_parent_under_the_adaptive_sampler(sampled: bool) -> None:
    provider, exporter = _provider(build_sampler(TelemetrySettings(sampler="adaptive")))
    tracer = provider.get_tracer("test")
    parent = trace.set_span_in_context(_remote_parent(sampled))

    with tracer.start_as_current_span("kafka.consume", context=parent) as span:
        assert span.get_span_context().trace_flags.sampled is sampled
        assert span.is_recording() is sampled
        with tracer.start_as_current_span("mongo.insert") as child:
            assert child.get_span_context().trace_flags.sampled is sampled

    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == (["kafka.consume", "mongo.insert"] if sampled else [])


def test_a_sampled_parent_wins_over_a_throttled_adaptive_root() -> None:
    clock = FakeClock()
    adaptive = AdaptiveSampler(1.0, window_s=1.0, clock=clock)
    for ms in range(2000):
        clock.now = ms / 1000.0
        adaptive.should_sample(None, ms, "kafka.consume")
    assert adaptive.probability("kafka.consume") < 0.01
    provider, exporter = _provider(ParentBased(adaptive))
    tracer = provider.get_tracer("test")

    for _ in range(20):
        with tracer.start_as_current_span(
            "kafka.consume", context=trace.set_span_in_context(_remote_parent(True))
        ):
            pass

    assert len(exporter.get_finished_spans()) == 20
