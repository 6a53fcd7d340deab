"""Retry policies: what happens to a dead letter of a given topic and event type.

A policy either *discards* at once or *retries* up to ``max_attempts`` times with exponential
backoff: the ceiling of attempt ``n`` is ``min(max_backoff_s, initial_backoff_s *
multiplier ** (n - 1))`` and the delay is drawn under it by the policy's jitter — ``full``
(uniform in ``[0, ceiling]``, the default: retries of many messages that failed together spread
out), ``equal`` (uniform in ``[ceiling / 2, ceiling]``) or ``none`` (exactly the ceiling).

Rules select by topic, event type or both; the most specific rule that matches wins (topic and
event type, then event type, then topic), else the default policy.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

Uniform = Callable[[float, float], float]


class Action(enum.StrEnum):
    RETRY = "retry"
    DISCARD = "discard"


class Jitter(enum.StrEnum):
    FULL = "full"
    EQUAL = "equal"
    NONE = "none"


class RetryPolicy(BaseModel):
    """One resolved policy; a copy is kept on each record it was applied to."""

    model_config = ConfigDict(frozen=True)

    rule: str
    action: Action
    max_attempts: int
    initial_backoff_s: float
    max_backoff_s: float
    multiplier: float
    jitter: Jitter = Jitter.FULL

    def ceiling(self, attempt: int) -> float:
        """The longest delay before retry ``attempt`` (1-based)."""
        exponent = max(attempt - 1, 0)
        try:
            growth = self.initial_backoff_s * self.multiplier**exponent
        except OverflowError:
            return self.max_backoff_s
        if math.isinf(growth):
            return self.max_backoff_s
        return min(self.max_backoff_s, growth)

    def delay(self, attempt: int, uniform: Uniform) -> float:
        """The delay before retry ``attempt``, jittered by ``uniform(low, high)``."""
        ceiling = self.ceiling(attempt)
        if self.jitter is Jitter.FULL:
            return uniform(0.0, ceiling)
        if self.jitter is Jitter.EQUAL:
            return uniform(ceiling / 2, ceiling)
        return ceiling


@dataclass(frozen=True)
class PolicyRule:
    """A policy for the messages of ``topic`` and/or ``event_type``."""

    policy: RetryPolicy
    topic: str | None = None
    event_type: str | None = None

    def __post_init__(self) -> None:
        if self.topic is None and self.event_type is None:
            raise ValueError("a rule needs a topic, an event type or both")

    @property
    def specificity(self) -> int:
        return (2 if self.event_type is not None else 0) + (1 if self.topic is not None else 0)

    def matches(self, topic: str | None, event_type: str | None) -> bool:
        return (self.topic is None or self.topic == topic) and (
            self.event_type is None or self.event_type == event_type
        )


def describe(topic: str | None, event_type: str | None) -> str:
    """How a rule is named on records and in logs: ``topic=x,event_type=y``."""
    parts = [f"topic={topic}" if topic else "", f"event_type={event_type}" if event_type else ""]
    return ",".join(p for p in parts if p) or "default"


class PolicyBook:
    """The default policy and the rules; ``for_message`` picks the most specific match."""

    def __init__(self, default: RetryPolicy, rules: Sequence[PolicyRule] = ()) -> None:
        seen: set[tuple[str | None, str | None]] = set()
        for rule in rules:
            selector = (rule.topic, rule.event_type)
            if selector in seen:
                raise ValueError(f"two retry rules for {describe(*selector)}")
            seen.add(selector)
        self.default = default
        # Most specific first; among equals, the order given.
        self.rules = sorted(rules, key=lambda r: -r.specificity)

    def for_message(self, topic: str | None, event_type: str | None) -> RetryPolicy:
        for rule in self.rules:
            if rule.matches(topic, event_type):
                return rule.policy
        return self.default
