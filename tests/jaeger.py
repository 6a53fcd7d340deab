"""Reading traces back from Jaeger's query API, as the tests assert trace shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.polling import eventually


@dataclass(frozen=True)
class JaegerSpan:
    span_id: str
    parent_id: str | None
    name: str
    service: str
    kind: str | None
    tags: dict[str, Any]
    links: list[tuple[str, str]]
    process: dict[str, Any] = field(default_factory=dict)  # the resource: the process's tags
    start_us: int = 0  # epoch microseconds, as Jaeger stores them
    duration_us: int = 0

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    def tag(self, name: str) -> Any:
        return self.tags.get(name)


@dataclass(frozen=True)
class JaegerTrace:
    trace_id: str
    spans: list[JaegerSpan]

    def named(self, name: str) -> list[JaegerSpan]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str) -> JaegerSpan:
        found = self.named(name)
        assert len(found) == 1, f"expected one span {name!r}, found {len(found)}: {self.names()}"
        return found[0]

    def by_id(self, span_id: str) -> JaegerSpan:
        return next(s for s in self.spans if s.span_id == span_id)

    def parent_of(self, span: JaegerSpan) -> JaegerSpan:
        assert span.parent_id, f"{span.name} has no parent"
        return self.by_id(span.parent_id)

    def children_of(self, span: JaegerSpan) -> list[JaegerSpan]:
        return [s for s in self.spans if s.parent_id == span.span_id]

    def names(self) -> list[str]:
        return sorted(s.name for s in self.spans)

    def services(self) -> set[str]:
        return {s.service for s in self.spans}


def parse_trace(data: dict[str, Any]) -> JaegerTrace:
    processes = {pid: p["serviceName"] for pid, p in data["processes"].items()}
    resources = {
        pid: {t["key"]: t["value"] for t in p.get("tags", [])}
        for pid, p in data["processes"].items()
    }
    spans = []
    for raw in data["spans"]:
        tags = {t["key"]: t["value"] for t in raw.get("tags", [])}
        parent = next(
            (r["spanID"] for r in raw.get("references", []) if r["refType"] == "CHILD_OF"), None
        )
        links = [
            (r["traceID"], r["spanID"])
            for r in raw.get("references", [])
            if r["refType"] == "FOLLOWS_FROM" or r["traceID"] != raw["traceID"]
        ]
        spans.append(
            JaegerSpan(
                span_id=raw["spanID"],
                parent_id=parent,
                name=raw["operationName"],
                service=processes[raw["processID"]],
                kind=tags.get("span.kind"),
                tags=tags,
                links=links,
                process=resources[raw["processID"]],
                start_us=int(raw.get("startTime", 0)),
                duration_us=int(raw.get("duration", 0)),
            )
        )
    return JaegerTrace(trace_id=data["traceID"], spans=spans)


async def wait_for_trace(
    base_url: str,
    trace_id: str,
    *,
    until: Any = None,
    timeout_s: float = 45.0,
) -> JaegerTrace:
    """Poll Jaeger until the trace exists and ``until(trace)`` holds (if given)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:

        async def fetch() -> JaegerTrace | None:
            response = await http.get(f"/api/traces/{trace_id}")
            if response.status_code != 200:
                return None
            data = response.json().get("data") or []
            if not data:
                return None
            found = parse_trace(data[0])
            if until is not None and not until(found):
                return None
            return found

        return await eventually(fetch, timeout_s=timeout_s, what=f"trace {trace_id} in Jaeger")


async def jaeger_services(base_url: str) -> set[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        response = await http.get("/api/services")
        response.raise_for_status()
        return set(response.json().get("data") or [])
