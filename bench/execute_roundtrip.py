"""Executions through the running system: throughput, latency, bare-sandbox and tracing ratios.

    uv run python bench/execute_roundtrip.py --clients 8 --duration 20

Needs the native local stack (`make up`). In one run it measures:
1. closed loop: N clients each POST /execute then wait for the terminal status (on the
   execution's SSE stream, or `--via wait`: `?wait=true`, one request), for T seconds:
   executions/s and POST→terminal p50/p95/p99;
2. open loop at half of that rate: p50/p95/p99 (the latency goal is stated at half load);
3. the bare sandbox: the coordinator's runner in a tight loop, no Kafka or HTTP;
4. step 1 again with tracing off in the api and the coordinator (both restarted with
   OTEL_SDK_DISABLED=true, then restarted as they were). ``--tracing-pairs N`` repeats the
   comparison N times (a traced loop, then an untraced one, each after a restart): one pair's
   ratio moves by several points on a shared machine, the median of N much less.
Next to step 1's throughput and latency, the same run prints where its cost went (whole-stack
counts over the closed loop, divided by the executions it completed; bench/stack_probe.py): CPU
milliseconds per execution by process tree (each service, the coordinator with its sandboxes,
the Mongo-wire server, Kafka, Redis, collector, Jaeger, this client) with each one's share,
Mongo-wire commands per execution by command, and Kafka messages per execution by topic.
Then issue 13's goals, each as measured/goal (never asserted): >= 25 executions/s on 2 cores,
>= 30 % of the bare sandbox, p99 <= 150 ms at half load, tracing costing <= 5 %.

``--profile SERVICE`` adds a closed loop of the same length with py-spy attached to that
service, writes the profile to .local/bench/ (speedscope) and prints its top functions by own
time. Pid files are read from ``$INTEGR8SCODE_RUN/pids`` (default: this repo's .local); the
tracing-off step restarts the services through that run directory's clone. See bench/README.md.
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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import aiohttp

import issue_goals
import pyspy_profile
import stack_probe
from proc_cpu import read_pid

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = stack_probe.RUN_DIR
API = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
SERVICES = ("api", "coordinator", "dlq-processor", "event-replay", "notifier")
SCRIPT = "print(sum(range(10)))"
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}


# Step 4's environment for the api and the coordinator.
OFF_BY = {
    "sdk": {"OTEL_SDK_DISABLED": "true"},
    "sampler": {"INTEGR8SCODE_TRACES_SAMPLER": "off"},
}


@dataclass
class Run:
    name: str
    seconds: float
    latencies_ms: list[float]
    failures: int

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    @property
    def completed(self) -> int:
        """Executions that ended, failed ones included: what a phase's cost is divided by."""
        return len(self.latencies_ms) + self.failures

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


class Phase(Protocol):
    """Something to do right before the measured loop starts and right after it ends."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def _user(http: aiohttp.ClientSession) -> dict[str, str]:
    name, password = f"bench_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    account = {"username": name, "password": password}
    async with http.post("/api/v1/auth/register", json=account):
        pass
    async with http.post("/api/v1/auth/login", json=account) as login:
        login.raise_for_status()
        token = (await login.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def _one(http: aiohttp.ClientSession, headers: dict[str, str], via: str) -> float | None:
    """POST, then wait for the terminal status: on the execution's SSE stream (``sse``: one
    more request, rather than polling that would load the API more than the executions do),
    or in the POST itself (``wait``: ``?wait=true`` answers 200 with the result)."""
    start = time.perf_counter()
    body = {"script": SCRIPT, "language": "python"}
    path = "/api/v1/execute?wait=true" if via == "wait" else "/api/v1/execute"
    async with http.post(path, json=body, headers=headers) as response:
        status, answer = response.status, await response.read()
    if via == "wait" and status == 200:
        ok = json.loads(answer)["status"] == "completed"
        return (time.perf_counter() - start) * 1000 if ok else None
    if status != 202:
        return None
    execution_id = json.loads(answer)["execution_id"]
    async with http.get(f"/api/v1/executions/{execution_id}/events", headers=headers) as stream:
        async for raw in stream.content:
            if not raw.startswith(b"data: "):
                continue
            status_now = json.loads(raw[6:])["status"]
            if status_now in TERMINAL:
                ok = status_now == "completed"
                return (time.perf_counter() - start) * 1000 if ok else None
    return None


def _session() -> aiohttp.ClientSession:
    """The bench's HTTP client. aiohttp rather than httpx: the client shares the two cores with
    the stack, and httpx cost about twice the CPU per execution (``bench client`` below)."""
    return aiohttp.ClientSession(base_url=API, timeout=aiohttp.ClientTimeout(total=60))


async def closed_loop(
    name: str, clients: int, duration: float, via: str, phase: Phase | None = None
) -> Run:
    """N clients, each running one execution after the other for ``duration`` seconds.
    ``phase`` brackets the loop itself (not the users' registration before it)."""
    async with _session() as http:
        users = [await _user(http) for _ in range(clients)]
        if phase is not None:
            await phase.start()
        latencies: list[float] = []
        failures = 0
        stop_at = time.perf_counter() + duration

        async def client(headers: dict[str, str]) -> None:
            nonlocal failures
            while time.perf_counter() < stop_at:
                latency = await _one(http, headers, via)
                if latency is None:
                    failures += 1
                else:
                    latencies.append(latency)

        start = time.perf_counter()
        await asyncio.gather(*(client(u) for u in users))
        seconds = time.perf_counter() - start
        if phase is not None:
            await phase.stop()
        return Run(name, seconds, latencies, failures)


async def open_loop(name: str, rate: float, duration: float, clients: int, via: str) -> Run:
    async with _session() as http:
        users = [await _user(http) for _ in range(clients)]
        latencies: list[float] = []
        failures = 0
        tasks: list[asyncio.Task[None]] = []

        async def fire(headers: dict[str, str]) -> None:
            nonlocal failures
            latency = await _one(http, headers, via)
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


def _stack_clone() -> Path:
    """The clone whose stack runs: the run directory's parent when that is a clone (a worktree
    benching another clone's stack), else this one."""
    clone = RUN_DIR.parent
    return clone if (clone / "deploy" / "local" / "components").is_dir() else ROOT


def _environment(service: str) -> dict[str, str]:
    """A running service's environment (/proc/<pid>/environ), to start it again as it was."""
    pid = read_pid(RUN_DIR, f"svc-{service}")
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes() if pid is not None else b""
    except OSError:
        return {}
    pairs = (e.decode(errors="surrogateescape").partition("=") for e in raw.split(b"\0") if e)
    return {key: value for key, _, value in pairs}


def _restart(env: dict[str, str], as_it_was: dict[str, str]) -> None:
    services = _stack_clone() / "deploy" / "local" / "components" / "services.sh"
    full_env = {**os.environ, **as_it_was, "INTEGR8SCODE_RUN": str(RUN_DIR), **env}
    subprocess.run(["bash", str(services), "stop", "api", "coordinator"], check=True, env=full_env)
    subprocess.run(["bash", str(services), "start", "api", "coordinator"], check=True, env=full_env)


class Profiling:
    """py-spy attached to one service for as long as the loop it brackets runs."""

    def __init__(self, service: str, seconds: float, rate: int) -> None:
        pid = read_pid(RUN_DIR, f"svc-{service}")
        if pid is None:
            raise SystemExit(f"--profile {service}: no pid file {RUN_DIR}/pids/svc-{service}.pid")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.output = ROOT / ".local" / "bench" / f"profile-{service}-{stamp}.speedscope.json"
        self.service, self._pid, self._seconds, self._rate = service, pid, seconds, rate
        self._task: asyncio.Task[str] | None = None
        self.summary = ""

    async def start(self) -> None:
        self._task = asyncio.create_task(
            pyspy_profile.record(self._pid, self._seconds, self.output, self._rate)
        )

    async def stop(self) -> None:
        if self._task is not None:
            self.summary = await self._task


def tracing_ratio(pairs: Sequence[tuple[Run, Run]]) -> float:
    """Traced over untraced throughput: the median of the pairs' ratios (nan without one)."""
    ratios = [on.rate / off.rate for on, off in pairs if off.rate]
    return statistics.median(ratios) if ratios else float("nan")


def goal_lines(
    traced: Run, half: Run, bare: Run, pairs: Sequence[tuple[Run, Run]] = ()
) -> list[str]:
    lines = [
        "\nissue 13 goals (measured/goal; >= 1 meets a higher-is-better goal, <= 1 a lower one):",
        issue_goals.line(issue_goals.THROUGHPUT, traced.rate),
        issue_goals.line(
            issue_goals.VS_BARE, traced.rate / bare.rate if bare.rate else float("nan")
        ),
        issue_goals.line(issue_goals.P99_HALF_LOAD, half.pct(99)),
    ]
    lines.append(issue_goals.line(issue_goals.TRACING_COST, 1 - tracing_ratio(pairs)))
    return [f"  {line}" if i else line for i, line in enumerate(lines)]


async def tracing_pairs(
    traced: Run, args: argparse.Namespace, untraced_probe: stack_probe.StackProbe
) -> list[tuple[Run, Run]]:
    """Step 4: ``--tracing-pairs`` (traced, untraced) closed loops; the first pair's traced loop
    is step 1's, its untraced one is bracketed by ``untraced_probe``. The api and the
    coordinator are restarted with the environment they run with (the coordinator's, then the
    api's on top: the prefixed settings don't collide), tracing off, and as they were at the
    end."""
    via = args.via
    as_it_was = {**_environment("coordinator"), **_environment("api")}
    pairs: list[tuple[Run, Run]] = []
    try:
        for pair in range(max(1, args.tracing_pairs)):
            on = traced
            if pair:
                _restart({}, as_it_was)
                await closed_loop("warm-up", 2, 3, via)
                on = await closed_loop(
                    f"closed loop, tracing on ({pair + 1})", args.clients, args.duration, via
                )
            _restart(OFF_BY[args.off_by], as_it_was)
            await closed_loop("warm-up", 2, 3, via)
            off = await closed_loop(
                f"closed loop, tracing off{f' ({pair + 1})' if pair else ''}",
                args.clients,
                args.duration,
                via,
                None if pair else untraced_probe,
            )
            pairs.append((on, off))
    finally:
        _restart({}, as_it_was)
    return pairs


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument(
        "--via",
        choices=("sse", "wait"),
        default="sse",
        help="how a client learns the end: the SSE stream (POST + GET), or POST ?wait=true",
    )
    parser.add_argument("--sandbox-concurrency", type=int, default=4)
    parser.add_argument(
        "--skip-tracing-off",
        action="store_true",
        help="don't restart the api and the coordinator with tracing off (step 4)",
    )
    parser.add_argument(
        "--off-by",
        choices=sorted(OFF_BY),
        default="sdk",
        help="how step 4 turns tracing off: 'sdk' (OTEL_SDK_DISABLED: no spans, no metrics), "
        "'sampler' (no spans; metrics still recorded and exported)",
    )
    parser.add_argument(
        "--tracing-pairs",
        type=int,
        default=1,
        help="traced/untraced closed-loop pairs for the tracing ratio (the median is the goal's)",
    )
    parser.add_argument(
        "--profile",
        choices=SERVICES,
        help="also profile this service with py-spy during an extra closed loop",
    )
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s")
    parser.add_argument("--top", type=int, default=15, help="functions to print from the profile")
    args = parser.parse_args()
    via = args.via

    await closed_loop("warm-up", 2, 3, via)
    probe = stack_probe.StackProbe(RUN_DIR)
    traced = await closed_loop(
        f"closed loop, {args.clients} clients", args.clients, args.duration, via, probe
    )
    half = await open_loop(
        f"open loop at {traced.rate / 2:.1f}/s", traced.rate / 2, args.duration, args.clients, via
    )
    bare = await bare_sandbox(args.duration, args.sandbox_concurrency)
    profiled: Run | None = None
    profiling: Profiling | None = None
    if args.profile:
        profiling = Profiling(args.profile, args.duration, args.profile_rate)
        profiled = await closed_loop(
            f"closed loop, py-spy on {args.profile}", args.clients, args.duration, via, profiling
        )
    untraced_probe = stack_probe.StackProbe(RUN_DIR)
    pairs: list[tuple[Run, Run]] = []
    if not args.skip_tracing_off:
        pairs = await tracing_pairs(traced, args, untraced_probe)
    untraced = pairs[0][1] if pairs else None

    print(f"\nexecute round trip — {os.cpu_count()} cores, script {SCRIPT!r}, via {via}")
    later = [run for pair in pairs[1:] for run in pair]
    for run in (traced, half, bare, profiled, untraced, *later):
        if run is not None:
            print(run.line())
    print(f"platform vs bare sandbox: {traced.rate / bare.rate:.0%} of the runner's rate")
    if untraced is not None and untraced.rate:
        print(
            f"tracing on vs off: {traced.rate / untraced.rate:.0%} of untraced throughput; "
            f"p50 {traced.pct(50) / untraced.pct(50):.2f}x"
        )
    if len(pairs) > 1:
        each = ", ".join(f"{on.rate / off.rate:.0%}" for on, off in pairs if off.rate)
        median = tracing_ratio(pairs)
        print(f"tracing on vs off over {len(pairs)} pairs: {each}; median {median:.0%}")
    print(f"mean latency {statistics.fmean(traced.latencies_ms or [0]):.1f} ms (closed loop)")
    if probe.result is not None:
        executions = traced.completed
        print("\n".join(stack_probe.report(probe.result, executions, RUN_DIR)))
        if untraced is not None and untraced_probe.result is not None:
            print(
                "\n".join(
                    stack_probe.compare(
                        ("tracing on", probe.result, executions),
                        ("off", untraced_probe.result, untraced.completed),
                    )
                )
            )
    print("\n".join(goal_lines(traced, half, bare, pairs)))
    if profiling is not None:
        print(f"\nprofile of {profiling.service} under load: {profiling.output}")
        print(f"  py-spy: {profiling.summary}")
        print("\n".join(pyspy_profile.summary(profiling.output, args.top)))


if __name__ == "__main__":
    asyncio.run(main())
