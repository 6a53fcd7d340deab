"""Rate limiting: rules, decisions, which rule applies to a request, and the gate that asks the
limiter and decides what happens when it can't be asked.

A rule names a route pattern, a limit per window, an algorithm and whom it counts:

- ``sliding_window``: at most ``limit`` requests in any ``window_s`` seconds (sliding window
  counter: the previous fixed window's count weighted by how much of it still overlaps);
- ``token_bucket``: bursts of up to ``limit`` requests, refilled at ``limit / window_s`` tokens
  per second;
- scope ``user`` counts per authenticated user (per client address for anonymous callers),
  scope ``client`` per client address always.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from integr8scode_api.domain.errors import ApiError, DependencyUnavailableError

log = logging.getLogger(__name__)

RULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_GLOB_CHARS = frozenset("*?[]")


class Algorithm(StrEnum):
    SLIDING_WINDOW = "sliding_window"
    TOKEN_BUCKET = "token_bucket"  # noqa: S105 - an algorithm, not a secret


class Scope(StrEnum):
    USER = "user"
    CLIENT = "client"


class RateLimitRule(BaseModel):
    """One limit, applied to the requests whose ``METHOD /path`` matches ``pattern``."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=RULE_NAME_PATTERN)
    pattern: str = Field(
        min_length=1,
        max_length=200,
        description="Glob over 'METHOD /path', e.g. 'POST /api/v1/auth/*' or "
        "'GET /api/v1/executions/*'; a pattern without a method matches every method.",
    )
    limit: int = Field(ge=1, le=1_000_000, description="Requests per window (bucket capacity).")
    window_s: float = Field(gt=0, le=86_400, description="Window length (full refill time).")
    algorithm: Algorithm
    scope: Scope
    enabled: bool = True

    @field_validator("pattern")
    @classmethod
    def _with_method(cls, value: str) -> str:
        value = value.strip()
        return value if " " in value else f"* {value}"

    def matches(self, method: str, path: str) -> bool:
        return fnmatchcase(f"{method.upper()} {path}", self.pattern)

    @property
    def specificity(self) -> int:
        """How much of the pattern is literal: the most specific matching rule wins."""
        return sum(1 for c in self.pattern if c not in _GLOB_CHARS)


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """What the limiter answered for one request."""

    allowed: bool
    limit: int
    remaining: int
    reset_after_s: float  # until the quota is whole again
    retry_after_s: float  # until the next request would be allowed (0 when allowed)
    algorithm: Algorithm
    rule: str
    window_s: float


@dataclass(frozen=True, slots=True)
class RateLimitCheck:
    """The outcome of the gate: which rule applied (if any), whom it counted, what it decided.
    ``degraded`` means the limiter was unavailable and the request was let through."""

    rule: RateLimitRule | None
    subject: str | None
    decision: RateLimitDecision | None
    degraded: bool = False

    @property
    def allowed(self) -> bool:
        return self.decision is None or self.decision.allowed


class RateLimitedError(ApiError):
    """Too many requests for the rule that applies; try again after ``retry_after_s``."""

    def __init__(self, decision: RateLimitDecision) -> None:
        super().__init__(
            f"rate limit '{decision.rule}' exceeded ({decision.limit} per {decision.window_s:g}s, "
            f"{decision.algorithm.value}); retry in {decision.retry_after_s:.2f}s"
        )
        self.decision = decision
        self.retry_after_s = decision.retry_after_s


class RateLimiter(Protocol):
    """Counts one request of ``subject`` under ``rule``, atomically, and answers whether it
    may pass."""

    async def hit(self, rule: RateLimitRule, subject: str) -> RateLimitDecision: ...


@dataclass(frozen=True, slots=True)
class ListedRule:
    """A rule as an admin sees it: ``overridden`` when it was set at run time (not a default)."""

    rule: RateLimitRule
    overridden: bool


class RateLimitRuleStore(Protocol):
    """The rules in force: defaults from settings, overridden or extended at run time."""

    async def active_rules(self) -> Sequence[RateLimitRule]:
        """The rules for the hot path: cached briefly, never raises (last known rules instead)."""
        ...

    async def list_rules(self) -> Sequence[ListedRule]:
        """Fresh from the store, for admins."""
        ...

    async def put(self, rule: RateLimitRule) -> None: ...

    async def delete(self, name: str) -> bool:
        """Remove the run-time rule ``name`` (a default comes back); False if there was none."""
        ...


def resolve_rule(
    rules: Sequence[RateLimitRule], method: str, path: str, name: str | None = None
) -> RateLimitRule | None:
    """The enabled rule that applies: the one called ``name`` if given, else the most specific
    pattern that matches (ties broken by name, so the choice is stable)."""
    enabled = [r for r in rules if r.enabled]
    if name is not None:
        return next((r for r in enabled if r.name == name), None)
    matching = [r for r in enabled if r.matches(method, path)]
    if not matching:
        return None
    return min(matching, key=lambda r: (-r.specificity, r.name))


def subject_for(rule: RateLimitRule, user_id: str | None, client: str) -> str:
    """Whom a request counts against under ``rule``."""
    if rule.scope is Scope.USER and user_id is not None:
        return f"user:{user_id}"
    return f"client:{client}"


class RateLimitGate:
    """Finds the rule, asks the limiter, and handles a limiter that does not answer.

    When the limiter is unavailable the gate fails open (the request passes, ``degraded`` is
    set, a warning is logged once per back-off period) or, with ``fail_open=False``, raises
    ``DependencyUnavailableError``. After a failure it does not ask again for ``backoff_s`` seconds,
    so a dead Redis costs each request nothing instead of a connection timeout.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        rules: RateLimitRuleStore,
        *,
        enabled: bool = True,
        fail_open: bool = True,
        backoff_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._rules = rules
        self._enabled = enabled
        self._fail_open = fail_open
        self._backoff_s = backoff_s
        self._clock = clock
        self._down_until = 0.0

    async def check(
        self,
        *,
        method: str,
        path: str,
        user_id: str | None,
        client: str,
        rule_name: str | None = None,
    ) -> RateLimitCheck:
        if not self._enabled:
            return RateLimitCheck(rule=None, subject=None, decision=None)
        rule = resolve_rule(await self._rules.active_rules(), method, path, rule_name)
        if rule is None:
            return RateLimitCheck(rule=None, subject=None, decision=None)
        subject = subject_for(rule, user_id, client)
        if self._clock() < self._down_until:
            return self._degraded(rule, subject, None)
        try:
            decision = await self._limiter.hit(rule, subject)
        except DependencyUnavailableError as exc:
            self._down_until = self._clock() + self._backoff_s
            return self._degraded(rule, subject, exc)
        return RateLimitCheck(rule=rule, subject=subject, decision=decision)

    def _degraded(
        self, rule: RateLimitRule, subject: str, error: DependencyUnavailableError | None
    ) -> RateLimitCheck:
        if error is not None:
            log.warning(
                "rate limiter unavailable (%s); %s for %.1fs",
                error.detail,
                "letting requests through" if self._fail_open else "refusing requests",
                self._backoff_s,
            )
        if not self._fail_open:
            raise error or DependencyUnavailableError(
                "rate limiter unavailable, try again later", dependency="redis"
            )
        return RateLimitCheck(rule=rule, subject=subject, decision=None, degraded=True)
