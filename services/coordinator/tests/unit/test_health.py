"""The service starts without its dependencies, stays live, and reports them as not ready."""

from __future__ import annotations

from fastapi.testclient import TestClient

from integr8scode_coordinator import SERVICE_NAME
from integr8scode_coordinator.app import create_app
from integr8scode_coordinator.config import Settings


def _settings_with_dead_dependencies() -> Settings:
    return Settings.model_validate(
        {
            "health_timeout_s": 3.0,
            "kafka": {"bootstrap_servers": "127.0.0.1:1", "request_timeout_ms": 1000},
            "mongo": {"url": "mongodb://127.0.0.1:1", "server_selection_timeout_ms": 300},
            "telemetry": {"sdk_disabled": True},
        }
    )


def test_live_answers_without_dependencies() -> None:
    with TestClient(create_app(_settings_with_dead_dependencies())) as client:
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["service"] == SERVICE_NAME


def test_ready_names_every_unreachable_dependency() -> None:
    with TestClient(create_app(_settings_with_dead_dependencies())) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    failed = {check["name"] for check in body["checks"] if not check["ok"]}
    # The background workers may or may not have given up yet: they are allowed to fail too.
    # The runtimes were never published (nothing to publish them to): not ready for the api.
    assert {"kafka", "mongo", "runtimes"} <= failed <= {"kafka", "mongo", "workers", "runtimes"}
    assert all(check["error"] for check in body["checks"] if not check["ok"])
