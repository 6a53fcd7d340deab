"""docker-compose.yml, checked statically: no Docker engine runs in CI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "api": "integr8scode-backend",
    "coordinator": "execution-coordinator",
    "dlq-processor": "dlq-processor",
    "event-replay": "event-replay",
    "notifier": "notifier",
}
INFRA = {"kafka", "mongo", "redis", "otel-collector", "jaeger"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_docker_compose_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose (Debian package) is installed by `make install`"
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_topology_matches_the_native_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == INFRA | set(SERVICES)
    images = {name: compose["services"][name].get("image", "") for name in INFRA}
    assert images["kafka"].startswith("apache/kafka:4.")
    assert images["mongo"].startswith("mongo:")
    assert images["redis"].startswith("redis:")
    assert images["otel-collector"].startswith("otel/opentelemetry-collector-contrib:")
    assert images["jaeger"].startswith("jaegertracing/jaeger:2.")


def test_every_published_port_is_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


@pytest.mark.parametrize("directory", sorted(SERVICES))
def test_each_service_builds_from_its_dockerfile_with_its_name(
    compose: dict[str, Any], directory: str
) -> None:
    service = compose["services"][directory]
    dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
    assert dockerfile == ROOT / "services" / directory / "Dockerfile"
    text = dockerfile.read_text()
    assert "HEALTHCHECK" in text
    assert '"healthcheck"]' in text  # the service's own settings decide the port it probes
    assert "USER 10001:10001" in text  # numeric: Kubernetes' runAsNonRoot can check it
    assert "ARG BASE_IMAGE=python:3.11-slim" in text
    assert f'io.integr8scode.service-name="{SERVICES[directory]}"' in text
    assert service["environment"]["OTEL_SERVICE_NAME"] == SERVICES[directory]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert set(service["depends_on"]) >= {"kafka", "mongo", "redis"}


def test_collector_pipeline_matches_the_native_one(compose: dict[str, Any]) -> None:
    mount = compose["services"]["otel-collector"]["volumes"][0].split(":")[0]
    docker_cfg = yaml.safe_load((ROOT / mount).read_text())
    native_cfg = yaml.safe_load((ROOT / "deploy/local/jaeger/collector.yaml").read_text())
    for cfg in (docker_cfg, native_cfg):
        traces = cfg["service"]["pipelines"]["traces"]
        assert traces["processors"] == ["memory_limiter", "tail_sampling", "batch"]
        tail = cfg["processors"]["tail_sampling"]
        policies = {p["type"] for p in tail["policies"]}
        assert {"status_code", "latency", "probabilistic"} <= policies
        # Late spans follow their trace's decision, whichever it was (kept or dropped whole).
        assert tail["decision_cache"]["sampled_cache_size"] > 0
        assert tail["decision_cache"]["non_sampled_cache_size"] > 0
        assert "prometheus" in cfg["service"]["pipelines"]["metrics"]["exporters"]


def test_the_api_and_the_notifier_share_the_key_ring_and_nobody_else_gets_it(
    compose: dict[str, Any],
) -> None:
    rings = {
        name: service["environment"].get("INTEGR8SCODE_SECRETS_KEYS")
        for name, service in compose["services"].items()
        if name in SERVICES
    }
    assert rings["api"] == rings["notifier"] == "${INTEGR8SCODE_SECRETS_KEYS:-}"
    assert {name for name, ring in rings.items() if ring is not None} == {"api", "notifier"}
    # Both still get the shared service environment alongside it.
    for name in ("api", "notifier"):
        assert compose["services"][name]["environment"]["MONGO_URL"] == "mongodb://mongo:27017"
