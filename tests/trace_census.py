"""A trace census: what Jaeger holds for a time window, per service.

For each service, the traces whose root span that service made (with their span counts), and
every span whose parent is not in its trace. The e2e tests assert on it: no root traces from
background work, no orphaned spans. Jaeger is asked per service (its search needs one) and the
traces are merged by id, so a trace that crosses services is counted once, under the service of
its root span.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from tests.jaeger import JaegerSpan, JaegerTrace, parse_trace
from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()

# Root span kinds that are work somebody asked for: a request (server) or a message (consumer).
WORK_KINDS = frozenset({"server", "consumer"})


@dataclass(frozen=True)
class RootTrace:
    trace_id: str
    service: str
    root: JaegerSpan
    span_count: int

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def background(self) -> bool:
        """A root no request or message explains: not a server or consumer span, and no link
        to the trace that caused it (a replay or a batch links back; a stray poll does not)."""
        return self.root.kind not in WORK_KINDS and not self.root.links

    def describe(self) -> str:
        db = self.root.tag("db.collection.name") or self.root.tag("db.mongodb.collection")
        where = f" on {db}" if db else ""
        return f"{self.service}: {self.name}{where} ({self.span_count} span(s), {self.trace_id})"


@dataclass(frozen=True)
class MissingParent:
    trace_id: str
    span: JaegerSpan

    def describe(self) -> str:
        return (
            f"{self.span.service}: {self.span.name} has parent {self.span.parent_id} "
            f"missing from trace {self.trace_id}"
        )


@dataclass
class Census:
    start: datetime
    end: datetime
    traces: dict[str, JaegerTrace] = field(default_factory=dict)
    roots: dict[str, list[RootTrace]] = field(default_factory=lambda: defaultdict(list))
    missing_parents: list[MissingParent] = field(default_factory=list)
    truncated: set[str] = field(default_factory=set)  # services whose search hit the limit

    def one_span_roots(self, service: str | None = None) -> list[RootTrace]:
        return [
            r
            for s, found in self.roots.items()
            if service is None or s == service
            for r in found
            if r.span_count == 1
        ]

    def background_roots(self, *, one_span_only: bool = True) -> list[RootTrace]:
        """Root traces that background work started (see ``RootTrace.background``)."""
        return [
            r
            for found in self.roots.values()
            for r in found
            if r.background and (r.span_count == 1 or not one_span_only)
        ]

    def missing_parents_in(self, trace_ids: Iterable[str]) -> list[MissingParent]:
        wanted = set(trace_ids)
        return [m for m in self.missing_parents if m.trace_id in wanted]

    def summary(self) -> dict[str, dict[str, int]]:
        """Per service: root traces, one-span roots, background roots (for a failure message)."""
        return {
            service: {
                "roots": len(found),
                "one_span": sum(1 for r in found if r.span_count == 1),
                "background": sum(1 for r in found if r.background),
            }
            for service, found in sorted(self.roots.items())
        }


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


async def trace_census(
    base_url: str,
    start: datetime,
    end: datetime,
    services: Iterable[str] | None = None,
    *,
    limit: int = 2000,
) -> Census:
    """Every trace Jaeger finds for ``services`` (default: all it knows) with a span between
    ``start`` and ``end`` (aware datetimes), grouped by the service of each trace's root."""
    census = Census(start=start, end=end)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        if services is None:
            response = await http.get("/api/services")
            response.raise_for_status()
            services = [s for s in response.json().get("data") or [] if s != "jaeger-all-in-one"]
        for service in services:
            response = await http.get(
                "/api/traces",
                params={
                    "service": service,
                    "start": _micros(start),
                    "end": _micros(end),
                    "limit": limit,
                },
            )
            response.raise_for_status()
            data = response.json().get("data") or []
            if len(data) >= limit:
                census.truncated.add(service)
            for raw in data:
                census.traces.setdefault(raw["traceID"], parse_trace(raw))
    return count(census)


def count(census: Census) -> Census:
    """Fill ``roots`` and ``missing_parents`` from ``census.traces``."""
    for trace_id, trace in census.traces.items():
        ids = {s.span_id for s in trace.spans}
        for span in trace.spans:
            if span.parent_id is None:
                census.roots[span.service].append(
                    RootTrace(trace_id, span.service, span, len(trace.spans))
                )
            elif span.parent_id not in ids:
                census.missing_parents.append(MissingParent(trace_id, span))
    return census


async def ready_everywhere(http: httpx.AsyncClient) -> None:
    """A readiness probe on each service, so their pings run inside the window."""
    for url in STACK.services.values():
        response = await http.get(f"{url}/health/ready")
        assert response.status_code == 200, f"{url}: {response.text}"


async def exported_up_to(
    http: httpx.AsyncClient, after: datetime, export_deadline_s: float = 60.0
) -> None:
    """Wait until each service has exported what it did before ``after``: a request made to
    each after it (``GET /openapi.json``, a traced server span) is visible in Jaeger. A process
    exports its spans in the order they end and the collector decides traces in arrival order,
    so a stray root trace from the window would be in Jaeger by then."""
    for url in STACK.services.values():
        response = await http.get(f"{url}/openapi.json")
        assert response.status_code == 200
    after_us = int(after.timestamp() * 1_000_000)

    async with httpx.AsyncClient(base_url=STACK.jaeger_query, timeout=10) as jaeger:

        async def visible(service: str) -> bool:
            response = await jaeger.get(
                "/api/traces",
                params={
                    "service": service,
                    "operation": "GET /openapi.json",
                    "start": after_us,
                    "end": int(time.time() * 1_000_000) + 1_000_000,
                    "limit": 5,
                },
            )
            return response.status_code == 200 and bool(response.json().get("data"))

        for service in STACK.services:
            await eventually(
                functools.partial(visible, service),
                timeout_s=export_deadline_s,
                interval_s=1.0,
                what=f"{service}'s spans exported up to the end of the window",
            )
