"""The Prometheus text exposition format, as far as the benches read it (counters by label)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        if match is None:
            raise ValueError(f"bad label set: {text!r}")
        value = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], match.group(2))
        labels[match.group(1)] = value
        position = match.end()
    return labels


def parse_samples(text: str) -> list[Sample]:
    """Every sample line (comments and blank lines skipped); the optional timestamp ignored."""
    samples = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"not a sample line: {line!r}")
        samples.append(Sample(match["name"], _labels(match["labels"] or ""), float(match["value"])))
    return samples


def sum_by_label(samples: Iterable[Sample], name: str, label: str) -> dict[str, float]:
    """Metric ``name`` summed over its other labels, per value of ``label``."""
    sums: dict[str, float] = {}
    for sample in samples:
        if sample.name == name and label in sample.labels:
            key = sample.labels[label]
            sums[key] = sums.get(key, 0.0) + sample.value
    return sums


def counter_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Per key, how much a counter grew; keys new in ``after`` started at 0. A counter that went
    down was reset (its process restarted): its delta is NaN, not a negative count."""
    delta: dict[str, float] = {}
    for key, value in after.items():
        grown = value - before.get(key, 0.0)
        delta[key] = grown if grown >= 0 else float("nan")
    return delta
