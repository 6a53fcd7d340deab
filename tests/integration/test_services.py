"""The five services: healthy in the running stack, start and stop cleanly as processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()
ROOT = Path(__file__).resolve().parents[2]

# service.name -> (module, env prefix)
MODULES = {
    "integr8scode-backend": ("integr8scode_api", "API"),
    "execution-coordinator": ("integr8scode_coordinator", "COORDINATOR"),
    "dlq-processor": ("integr8scode_dlq_processor", "DLQ"),
    "event-replay": ("integr8scode_event_replay", "REPLAY"),
    "notifier": ("integr8scode_notifier", "NOTIFIER"),
}

# What /health/ready checks, where it is more than Kafka, Mongo and the background tasks.
READINESS_CHECKS = {
    "integr8scode-backend": ["kafka", "mongo", "redis", "status-feed", "workers"],
    # Not ready until its runtimes are published: until then the api refuses every language.
    "execution-coordinator": ["kafka", "mongo", "runtimes", "workers"],
}


@pytest.mark.parametrize("service", sorted(STACK.services))
async def test_running_service_is_live_and_ready(service: str) -> None:
    async with httpx.AsyncClient(base_url=STACK.services[service], timeout=10) as http:
        live = await http.get("/health/live")
        ready = await http.get("/health/ready")
    assert live.status_code == 200
    assert live.json()["service"] == service
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert {"kafka", "mongo"} <= {c["name"] for c in checks}
    assert all(c["ok"] for c in checks)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("service", sorted(MODULES))
async def test_service_process_gets_ready_and_stops_cleanly_on_sigterm(service: str) -> None:
    module, prefix = MODULES[service]
    port = _free_port()
    env = {
        **os.environ,
        f"{prefix}_PORT": str(port),
        f"{prefix}_HOST": "127.0.0.1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": STACK.otlp_grpc,
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child process we signal and reap below
        [sys.executable, "-m", module],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:

            async def live() -> bool:
                return (await http.get("/health/live")).status_code == 200

            await eventually(live, timeout_s=60, what=f"{service} live on port {port}")

            # This branch's composition root, ready against the real stack: its Mongo client
            # and ping (libs/mongo), the Kafka probe and the supervisor's check, by name.
            async def ready() -> bool:
                return (await http.get("/health/ready")).status_code == 200

            await eventually(ready, timeout_s=60, what=f"{service} ready on port {port}")
            checks = (await http.get("/health/ready")).json()["checks"]
            assert sorted(c["name"] for c in checks) == READINESS_CHECKS.get(
                service, ["kafka", "mongo", "workers"]
            )
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout=30)
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert code == 0, output
        assert "Application shutdown complete" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
