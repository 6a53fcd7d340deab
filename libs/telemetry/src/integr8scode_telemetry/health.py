"""Liveness and readiness endpoints, the operator's first signal next to traces and metrics.

Every service mounts the same two routes: ``/health/live`` answers as long as the process
serves requests; ``/health/ready`` runs the service's probes (Kafka, Mongo, Redis, ...) with a
timeout each and answers 503 naming the ones that failed. The probes run ``untraced()``: the
server span of a probe is excluded already, so a Mongo ping would be a root trace of its own
every few seconds per service.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from integr8scode_telemetry.background import untraced


@dataclass(frozen=True)
class HealthProbe:
    """A named async check that raises (or returns False) when the dependency is unusable."""

    name: str
    check: Callable[[], Awaitable[bool]]


class ProbeResult(BaseModel):
    name: str
    ok: bool
    error: str | None = None


class HealthReport(BaseModel):
    status: str
    service: str
    checks: list[ProbeResult] = []


async def _run_probe(probe: HealthProbe, timeout_s: float) -> ProbeResult:
    try:
        ok = await asyncio.wait_for(probe.check(), timeout=timeout_s)
    except TimeoutError:
        return ProbeResult(name=probe.name, ok=False, error=f"no answer within {timeout_s}s")
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "not ready"
        return ProbeResult(name=probe.name, ok=False, error=f"{type(exc).__name__}: {exc}")
    return ProbeResult(name=probe.name, ok=ok, error=None if ok else "check returned false")


def build_health_router(
    service: str, probes: Sequence[HealthProbe], timeout_s: float = 2.0
) -> APIRouter:
    """Routes ``/health/live`` and ``/health/ready`` for one service."""
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> HealthReport:
        return HealthReport(status="ok", service=service)

    @router.get("/ready", responses={503: {"model": HealthReport}})
    async def ready(response: Response) -> HealthReport:
        with untraced():  # the gathered tasks copy this context
            results = await asyncio.gather(*(_run_probe(p, timeout_s) for p in probes))
        ok = all(r.ok for r in results)
        if not ok:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return HealthReport(status="ok" if ok else "unavailable", service=service, checks=results)

    return router


def probe_live(host: str, port: int, timeout_s: float = 2.0) -> int:
    """Exit status of a container health check: 0 when ``/health/live`` answers 200 on the port
    the service is configured with, 1 otherwise. A wildcard bind address is probed on loopback.

    Services call it for ``<entry point> healthcheck`` (Dockerfile ``HEALTHCHECK``), so the check
    reads the same settings as the service and follows a changed port."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind address, probed on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{port}/health/live"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1
