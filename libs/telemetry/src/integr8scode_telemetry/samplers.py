"""Head samplers: parent-based ratio (default), adaptive, off.

The adaptive sampler keeps the number of sampled *traces* near a budget per second. Root spans
are grouped by key (``http.route`` when present, else the span name) and the budget is shared
by water-filling: a key whose traffic is below its fair share keeps everything, so quiet
endpoints are never starved, and only the busy keys are thinned. Spans whose attributes already
say they failed are always kept. Children follow their parent, so traces stay whole.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from integr8scode_telemetry.settings import TelemetrySettings

_TRACE_ID_LIMIT = (1 << 64) - 1
_OVERFLOW_KEY = "\x00other"  # keys past ``max_keys`` share one slot of the budget


def _looks_failed(attributes: Attributes) -> bool:
    if not attributes:
        return False
    if attributes.get("error.type") or attributes.get("error") is True:
        return True
    status = attributes.get("http.response.status_code") or attributes.get("http.status_code")
    return isinstance(status, int) and status >= 500


def water_fill(rates: Mapping[str, float], budget: float) -> dict[str, float]:
    """Sampling probability per key so the kept rates sum to at most ``budget``, with keys below
    their fair share kept whole."""
    probabilities: dict[str, float] = {}
    remaining = budget
    ordered = sorted(rates.items(), key=lambda item: item[1])
    for index, (key, rate) in enumerate(ordered):
        if rate <= 0:
            probabilities[key] = 1.0
            continue
        share = remaining / (len(ordered) - index)
        kept = min(rate, share)
        probabilities[key] = kept / rate
        remaining -= kept
    return probabilities


class AdaptiveSampler(Sampler):
    """Root-span sampler aiming at ``traces_per_second``; see the module docstring."""

    def __init__(
        self,
        traces_per_second: float,
        *,
        window_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1000,
    ) -> None:
        if traces_per_second <= 0:
            raise ValueError("traces_per_second must be positive")
        self._budget = traces_per_second
        self._window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._window_start = clock()
        self._counts: dict[str, int] = {}
        self._probabilities: dict[str, float] = {}

    def get_description(self) -> str:
        return f"AdaptiveSampler{{{self._budget}/s}}"

    def probability(self, key: str) -> float:
        """The current probability for ``key`` (1.0 until the key has a window of history)."""
        with self._lock:
            return self._probabilities.get(key, 1.0)

    def should_sample(  # noqa: PLR0917 - the SDK's signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if _looks_failed(attributes):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        key = str((attributes or {}).get("http.route") or name)
        probability = self._observe(key)
        keep = (trace_id & _TRACE_ID_LIMIT) < probability * _TRACE_ID_LIMIT
        decision = Decision.RECORD_AND_SAMPLE if keep else Decision.DROP
        sampled_attributes = dict(attributes or {}) if keep else None
        if sampled_attributes is not None:
            sampled_attributes["sampling.probability"] = probability
        return SamplingResult(decision, sampled_attributes, trace_state)

    def _observe(self, key: str) -> float:
        with self._lock:
            now = self._clock()
            elapsed = now - self._window_start
            if elapsed >= self._window_s:
                rates = {k: c / elapsed for k, c in self._counts.items()}
                self._probabilities = water_fill(rates, self._budget)
                self._counts = {}
                self._window_start = now
            if key not in self._counts and len(self._counts) >= self._max_keys:
                key = _OVERFLOW_KEY
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._probabilities.get(key, 1.0)


def build_sampler(settings: TelemetrySettings) -> Sampler:
    """The sampler the settings ask for; children always follow a sampled or dropped parent."""
    if not settings.tracing_enabled:
        return ALWAYS_OFF
    if settings.sampler == "adaptive":
        return ParentBased(AdaptiveSampler(settings.adaptive_traces_per_second))
    return ParentBased(TraceIdRatioBased(settings.sampler_ratio))


def current_trace_sampled() -> bool:
    """Whether the current span will be exported (for cheap guards around costly attributes)."""
    return bool(get_current_span().get_span_context().trace_flags.sampled)


__all__: list[str] = [
    "AdaptiveSampler",
    "build_sampler",
    "current_trace_sampled",
    "water_fill",
]
