"""Executions through the running system: throughput, latency, bare-sandbox and tracing ratios.

    uv run python bench/execute_roundtrip.py --clients 8 --duration 20

Needs the native local stack (`make up`). In one run it measures:
1. closed loop: N clients each POST /execute then poll until terminal, for T seconds:
   executions/s and POST→terminal p50/p95/p99;
2. open loop at half of that rate: p50/p95/p99 (the latency goal is stated at half load);
3. the bare sandbox: the coordinator's runner in a tight loop, no Kafka or HTTP;
4. step 1 again with tracing off in the api and the coordinator (both restarted with
   OTEL_SDK_DISABLED=true, then restarted as they were).
Goals to report against (not asserted): >= 25 executions/s on 2 cores, p99 <= 150 ms at half
load, tracing costing <= 5%.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
API = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
SCRIPT = "print(sum(range(10)))"
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}


@dataclass
class Run:
    name: str
    seconds: float
    latencies_ms: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self) -> str:
        return (
            f"{self.name:34} {self.rate:8.1f}/s  p50 {self.pct(50):7.1f} ms  "
            f"p95 {self.pct(95):7.1f} ms  p99 {self.pct(99):7.1f} ms  "
            f"n={len(self.latencies_ms)} failed={self.failures}"
        )


async def _user(http: httpx.AsyncClient) -> dict[str, str]:
    name, password = f"bench_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    await http.post("/api/v1/auth/register", json={"username": name, "password": password})
    login = await http.post("/api/v1/auth/login", json={"username": name, "password": password})
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _one(http: httpx.AsyncClient, headers: dict[str, str], poll_s: float) -> float | None:
    """POST, then wait for the terminal status on the execution's SSE stream (one request,
    rather than polling that would load the API more than the executions do)."""
    start = time.perf_counter()
    response = await http.post(
        "/api/v1/execute", json={"script": SCRIPT, "language": "python"}, headers=headers
    )
    if response.status_code != 202:
        return None
    execution_id = response.json()["execution_id"]
    async with http.stream(
        "GET", f"/api/v1/executions/{execution_id}/events", headers=headers
    ) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data: "):
                continue
            status = json.loads(line[6:])["status"]
            if status in TERMINAL:
                ok = status == "completed"
                return (time.perf_counter() - start) * 1000 if ok else None
    return None


async def closed_loop(name: str, clients: int, duration: float, poll_s: float) -> Run:
    async with httpx.AsyncClient(base_url=API, timeout=60) as http:
        users = [await _user(http) for _ in range(clients)]
        latencies: list[float] = []
        failures = 0
        stop_at = time.perf_counter() + duration

        async def client(headers: dict[str, str]) -> None:
            nonlocal failures
            while time.perf_counter() < stop_at:
                latency = await _one(http, headers, poll_s)
                if latency is None:
                    failures += 1
                else:
                    latencies.append(latency)

        start = time.perf_counter()
        await asyncio.gather(*(client(u) for u in users))
        return Run(name, time.perf_counter() - start, latencies, failures)


async def open_loop(name: str, rate: float, duration: float, clients: int, poll_s: float) -> Run:
    async with httpx.AsyncClient(base_url=API, timeout=60) as http:
        users = [await _user(http) for _ in range(clients)]
        latencies: list[float] = []
        failures = 0
        tasks: list[asyncio.Task[None]] = []

        async def fire(headers: dict[str, str]) -> None:
            nonlocal failures
            latency = await _one(http, headers, poll_s)
            if latency is None:
                failures += 1
            else:
                latencies.append(latency)

        start = time.perf_counter()
        interval = 1 / max(rate, 0.1)
        i = 0
        while time.perf_counter() - start < duration:
            tasks.append(asyncio.create_task(fire(users[i % len(users)])))
            i += 1
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
        await asyncio.gather(*tasks)
        return Run(name, duration, latencies, failures)


async def bare_sandbox(duration: float, concurrency: int) -> Run:
    from integr8scode_coordinator.sandbox import (  # noqa: PLC0415
        SandboxLimits,
        SandboxRequest,
    )
    from integr8scode_coordinator.sandbox.bubblewrap import BubblewrapRunner  # noqa: PLC0415

    runner = BubblewrapRunner.detect()
    version = next(r.default_version for r in runner.runtimes() if r.language == "python")
    limits = SandboxLimits(timeout_s=5, memory_mb=128, cpu_time_s=5, max_output_bytes=1 << 20)
    latencies: list[float] = []
    failures = 0
    stop_at = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal failures
        while time.perf_counter() < stop_at:
            request = SandboxRequest(uuid.uuid4().hex, "python", version, SCRIPT, "", limits)
            t0 = time.perf_counter()
            result = await runner.run(request, asyncio.Event())
            if result.outcome == "completed" and result.stdout == "45\n":
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run("bare sandbox (runner only)", time.perf_counter() - start, latencies, failures)


def _restart(env: dict[str, str]) -> None:
    services = ROOT / "deploy" / "local" / "components" / "services.sh"
    full_env = {**os.environ, **env}
    subprocess.run(["bash", str(services), "stop", "api", "coordinator"], check=True, env=full_env)
    subprocess.run(["bash", str(services), "start", "api", "coordinator"], check=True, env=full_env)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument("--sandbox-concurrency", type=int, default=4)
    parser.add_argument("--skip-tracing-off", action="store_true")
    args = parser.parse_args()
    poll = args.poll_ms / 1000

    await closed_loop("warm-up", 2, 3, poll)
    traced = await closed_loop(
        f"closed loop, {args.clients} clients", args.clients, args.duration, poll
    )
    half = await open_loop(
        f"open loop at {traced.rate / 2:.1f}/s", traced.rate / 2, args.duration, args.clients, poll
    )
    bare = await bare_sandbox(args.duration, args.sandbox_concurrency)
    untraced: Run | None = None
    if not args.skip_tracing_off:
        _restart({"OTEL_SDK_DISABLED": "true"})
        try:
            await closed_loop("warm-up", 2, 3, poll)
            untraced = await closed_loop(
                "closed loop, tracing off", args.clients, args.duration, poll
            )
        finally:
            _restart({})

    print(f"\nexecute round trip — {os.cpu_count()} cores, script {SCRIPT!r}")
    for run in (traced, half, bare, untraced):
        if run is not None:
            print(run.line())
    print(f"platform vs bare sandbox: {traced.rate / bare.rate:.0%} of the runner's rate")
    if untraced is not None and untraced.rate:
        print(
            f"tracing on vs off: {traced.rate / untraced.rate:.0%} of untraced throughput; "
            f"p50 {traced.pct(50) / untraced.pct(50):.2f}x"
        )
    print(f"mean latency {statistics.fmean(traced.latencies_ms or [0]):.1f} ms (closed loop)")


if __name__ == "__main__":
    asyncio.run(main())
