"""/health/live and /health/ready with passing, raising, false and hanging probes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from integr8scode_telemetry.health import HealthProbe, build_health_router


async def _ok() -> bool:
    return True


async def _raises() -> bool:
    raise ConnectionRefusedError("kafka:9092 refused")


async def _false() -> bool:
    return False


async def _hangs() -> bool:
    await asyncio.Event().wait()  # never set: only the probe timeout ends it
    return True


def _client(probes: Sequence[HealthProbe], timeout_s: float = 0.05) -> TestClient:
    app = FastAPI()
    app.include_router(build_health_router("notifier", probes, timeout_s=timeout_s))
    return TestClient(app)


def test_live_answers_without_running_probes() -> None:
    with _client([HealthProbe("kafka", _raises)]) as client:
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "notifier", "checks": []}


def test_ready_is_200_when_every_probe_passes() -> None:
    with _client([HealthProbe("kafka", _ok), HealthProbe("mongo", _ok)]) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["service"] == "notifier"
    assert body["checks"] == [
        {"name": "kafka", "ok": True, "error": None},
        {"name": "mongo", "ok": True, "error": None},
    ]


def test_ready_is_503_naming_each_failure() -> None:
    probes = [
        HealthProbe("mongo", _ok),
        HealthProbe("kafka", _raises),
        HealthProbe("redis", _false),
        HealthProbe("webhook", _hangs),
    ]
    with _client(probes) as client:
        response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["mongo"] == {"name": "mongo", "ok": True, "error": None}
    assert checks["kafka"]["ok"] is False
    assert checks["kafka"]["error"] == "ConnectionRefusedError: kafka:9092 refused"
    assert checks["redis"] == {"name": "redis", "ok": False, "error": "check returned false"}
    assert checks["webhook"]["ok"] is False
    assert checks["webhook"]["error"] == "no answer within 0.05s"


def test_ready_with_no_probes_is_ready() -> None:
    with _client([]) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == []


def test_ready_runs_its_probes_with_client_instrumentation_suppressed() -> None:
    seen: list[bool] = []

    async def _records() -> bool:
        seen.append(is_instrumentation_enabled())
        return True

    with _client([HealthProbe("mongo", _records), HealthProbe("kafka", _records)]) as client:
        response = client.get("/health/ready")
        assert response.status_code == 200
    assert seen == [False, False]  # a Mongo ping here would be a root trace of its own
