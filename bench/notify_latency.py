"""Notifications through the running system: from an execution's end to its webhook and Slack.

    uv run python bench/notify_latency.py --executions 50 --clients 4 --dlq-samples 4

Needs the native local stack (`make up`). Two receivers run in this process on 127.0.0.1: a
webhook endpoint and a stand-in for Slack's incoming-webhook protocol (200 ``ok``); every bench
user's notification settings point at both. In one run it measures:
1. N executions by C concurrent clients; for each, the time from its ``finished_at`` (GET
   /api/v1/executions/{id}, the terminal event's ``occurred_at``) to the webhook's and to
   Slack's receipt: p50/p95/p99, and deliveries/s from the first ``finished_at`` to the last
   receipt (at this load, that follows the executions' own rate);
2. the notifier's capacity: it is stopped, B executions run, it is started again; the rate at
   which the queued deliveries then arrive (first to last receipt);
3. the dead-letter round trip, a few samples one after the other: the webhook answers 500
   until the dead letter shows in the DLQ admin API (consumer group ``notifier``), then 200;
   the time from ``finished_at`` to the accepted delivery. It is made of the configured
   backoffs (the notifier's in-process attempts, then the DLQ processor's first retry),
   printed with it. Meanwhile a bystander user with healthy receivers runs an execution every
   0.2 s: its latencies show what one failing receiver costs everybody else's notifications;
4. steps 1 and 2 with tracing off in the notifier (OTEL_SDK_DISABLED=true); the notifier is
   then started again with the environment it had. The ratios are what matters.
Figures only; nothing is asserted. ``--skip-restarts`` leaves the notifier alone (1 and 3).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType

import httpx
from aiohttp import web

from admin_login import admin_headers

ROOT = Path(__file__).resolve().parents[1]
API = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
DLQ = f"http://127.0.0.1:{os.environ.get('DLQ_PORT', '8002')}"
RUN_DIR = Path(os.environ.get("INTEGR8SCODE_RUN", ROOT / ".local"))
SCRIPT = "print(sum(range(10)))"
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}
SLACK_PATH = "/services/TBENCH/BBENCH/BENCHSLACKTOKEN"
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Arrival:
    at: float  # wall clock (time.time()), comparable with the API's finished_at
    status: int  # what the receiver answered
    body: bytes


@dataclass
class Receiver:
    """``async with Receiver() as r:``; records every request, answers ``r.status``."""

    status: int = 200
    arrivals: list[Arrival] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.time()
        body = await request.read()
        status = self.status
        self.arrivals.append(Arrival(at, status, body))
        return web.Response(status=status, text="ok" if status == 200 else "bench says no")

    def accepted(self, execution_ids: Iterable[str]) -> dict[str, float]:
        """Execution id → when its first accepted (200) message arrived."""
        wanted = set(execution_ids)
        first: dict[str, float] = {}
        for arrival in self.arrivals:
            if arrival.status != 200:
                continue
            for match in UUID.findall(arrival.body):
                found = match.decode()
                if found in wanted and found not in first:
                    first[found] = arrival.at
        return first

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = site.port
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Latencies:
    name: str
    values_ms: list[float]

    def pct(self, p: float) -> float:
        if not self.values_ms:
            return float("nan")
        ordered = sorted(self.values_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self) -> str:
        return (
            f"  {self.name:30} p50 {self.pct(50):7.1f} ms  p95 {self.pct(95):7.1f} ms  "
            f"p99 {self.pct(99):7.1f} ms  max {self.pct(100):7.1f} ms  n={len(self.values_ms)}"
        )


@dataclass
class Round:
    name: str
    executions: int
    execution_s: float  # first POST to last terminal
    webhook: Latencies
    slack: Latencies
    deliveries_per_s: float
    missing: int
    backlog: Backlog | None = None

    def lines(self) -> list[str]:
        if self.backlog is not None:
            return [f"{self.name}: {self.backlog.line()}, missing {self.missing}"]
        return [
            f"{self.name}: {self.executions} executions in {self.execution_s:.1f} s "
            f"({self.executions / self.execution_s:.1f}/s), "
            f"{self.deliveries_per_s:.1f} deliveries/s, missing {self.missing}",
            self.webhook.line(),
            self.slack.line(),
        ]


@dataclass(frozen=True)
class Backlog:
    """Deliveries queued while the notifier was stopped, drained once it is started."""

    deliveries: int
    started_at: float  # `services.sh start notifier` was run (wall clock)
    first_at: float
    last_at: float

    @property
    def rate(self) -> float:
        span = self.last_at - self.first_at
        return (self.deliveries - 1) / span if span > 0 else float("nan")

    def line(self) -> str:
        return (
            f"{self.deliveries} queued deliveries drained at {self.rate:.1f}/s "
            f"(first to last receipt, {self.last_at - self.first_at:.2f} s; first receipt "
            f"{self.first_at - self.started_at:.1f} s after `services.sh start`)"
        )


async def _user(http: httpx.AsyncClient) -> dict[str, str]:
    name, password = f"bench_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    await http.post("/api/v1/auth/register", json={"username": name, "password": password})
    login = await http.post("/api/v1/auth/login", json={"username": name, "password": password})
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _notify_to(
    http: httpx.AsyncClient, headers: dict[str, str], webhook: str, slack: str | None
) -> None:
    body: dict[str, object] = {"webhook": {"url": webhook, "secret": uuid.uuid4().hex}}
    if slack is not None:
        body["slack"] = {"webhook_url": slack}
    response = await http.put("/api/v1/notifications/settings", json=body, headers=headers)
    response.raise_for_status()


async def _execute(http: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, float] | None:
    """Run one execution; its id and ``finished_at`` (unix seconds), or None if it failed to."""
    response = await http.post(
        "/api/v1/execute", json={"script": SCRIPT, "language": "python"}, headers=headers
    )
    if response.status_code != 202:
        return None
    execution_id: str = response.json()["execution_id"]
    async with http.stream(
        "GET", f"/api/v1/executions/{execution_id}/events", headers=headers
    ) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["status"] in TERMINAL:
                break
    record = (await http.get(f"/api/v1/executions/{execution_id}", headers=headers)).json()
    if not record.get("finished_at"):
        return None
    return execution_id, datetime.fromisoformat(record["finished_at"]).timestamp()


async def latency_round(
    name: str,
    executions: int,
    clients: int,
    wait_s: float,
    *,
    until: asyncio.Event | None = None,
    pause_s: float = 0.0,
    backlog_env: dict[str, str] | None = None,
) -> Round:
    """``executions`` by ``clients`` at once (or fewer: until ``until`` is set, pausing
    ``pause_s`` between two), then wait for their deliveries. With ``backlog_env`` the
    notifier is stopped during the executions and started with that environment after them:
    the round measures how fast it drains the backlog."""
    started_at = 0.0
    async with (
        Receiver() as webhook,
        Receiver() as slack,
        httpx.AsyncClient(base_url=API, timeout=60) as http,
    ):
        users = [await _user(http) for _ in range(clients)]
        for headers in users:
            await _notify_to(http, headers, webhook.url("/hook"), slack.url(SLACK_PATH))
        if backlog_env is not None:
            await asyncio.to_thread(_notifier, "stop", backlog_env)
        finished: dict[str, float] = {}
        queue = iter(range(executions))

        async def client(headers: dict[str, str]) -> None:
            for _ in queue:
                if until is not None and until.is_set():
                    return
                result = await _execute(http, headers)
                if result is not None:
                    finished[result[0]] = result[1]
                await asyncio.sleep(pause_s)

        start = time.perf_counter()
        await asyncio.gather(*(client(u) for u in users))
        execution_s = time.perf_counter() - start
        if backlog_env is not None:
            started_at = time.time()
            await asyncio.to_thread(_notifier, "start", backlog_env)

        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            hooks, messages = webhook.accepted(finished), slack.accepted(finished)
            if len(hooks) == len(messages) == len(finished):
                break
            await asyncio.sleep(0.05)
        hooks, messages = webhook.accepted(finished), slack.accepted(finished)

    webhook_ms = [(at - finished[e]) * 1000 for e, at in hooks.items()]
    slack_ms = [(at - finished[e]) * 1000 for e, at in messages.items()]
    arrivals = [*hooks.values(), *messages.values()]
    span = max(arrivals, default=0.0) - min(finished.values(), default=0.0)
    backlog = None
    if backlog_env is not None and arrivals:
        backlog = Backlog(len(arrivals), started_at, min(arrivals), max(arrivals))
    return Round(
        name=name,
        executions=len(finished),
        execution_s=execution_s,
        webhook=Latencies("finished_at -> webhook", webhook_ms),
        slack=Latencies("finished_at -> Slack", slack_ms),
        deliveries_per_s=len(arrivals) / span if span > 0 else 0.0,
        missing=2 * len(finished) - len(arrivals),
        backlog=backlog,
    )


@dataclass(frozen=True)
class DeadLetterSample:
    dead_lettered_ms: float  # finished_at -> the record listed by the DLQ admin API
    delivered_ms: float  # finished_at -> the accepted (200) delivery
    refused: int  # 500s the receiver answered before


async def _dead_letter_sample(
    http: httpx.AsyncClient, dlq: httpx.AsyncClient, admin: dict[str, str], wait_s: float
) -> DeadLetterSample | None:
    async with Receiver(status=500) as webhook:
        headers = await _user(http)
        await _notify_to(http, headers, webhook.url("/hook"), None)
        result = await _execute(http, headers)
        if result is None:
            return None
        execution_id, finished_at = result
        deadline = time.monotonic() + wait_s
        listed_at: float | None = None
        while listed_at is None and time.monotonic() < deadline:
            response = await dlq.get(
                "/api/v1/dlq/messages",
                params={"execution_id": execution_id, "consumer_group": "notifier"},
                headers=admin,
            )
            response.raise_for_status()
            if response.json()["items"]:
                listed_at = time.time()
            else:
                await asyncio.sleep(0.1)
        webhook.status = 200
        if listed_at is None:
            return None
        while time.monotonic() < deadline:
            accepted = webhook.accepted([execution_id])
            if execution_id in accepted:
                return DeadLetterSample(
                    dead_lettered_ms=(listed_at - finished_at) * 1000,
                    delivered_ms=(accepted[execution_id] - finished_at) * 1000,
                    refused=sum(a.status != 200 for a in webhook.arrivals),
                )
            await asyncio.sleep(0.05)
        return None


async def dead_letter_round(
    samples: int, wait_s: float
) -> tuple[list[DeadLetterSample | None], Round]:
    """The samples one after the other, and meanwhile a bystander whose receivers are fine,
    running an execution every 0.2 s: what a failing receiver costs everybody else."""
    async with (
        httpx.AsyncClient(base_url=API, timeout=60) as http,
        httpx.AsyncClient(base_url=DLQ, timeout=30) as dlq,
    ):
        admin = await admin_headers(http, API)
        done = asyncio.Event()
        bystander = asyncio.create_task(
            latency_round(
                "bystander during the dead-letter samples",
                10_000,
                1,
                wait_s,
                until=done,
                pause_s=0.2,
            )
        )
        try:
            # One after the other: concurrent failures would wait for each other (see README).
            results = [await _dead_letter_sample(http, dlq, admin, wait_s) for _ in range(samples)]
        finally:
            done.set()
        return results, await bystander


NOTIFIER_KNOBS = ("delivery_attempts", "backoff_initial_s", "backoff_max_s")
DLQ_KNOBS = (
    "default_max_attempts",
    "default_initial_backoff_s",
    "default_max_backoff_s",
    "default_multiplier",
    "default_jitter",
    "poll_interval_s",
)


def _running_settings(service: str, prefix: str, knobs: Iterable[str]) -> dict[str, str]:
    """These settings (only these) as the running service has them: its environment where it
    sets them (read from /proc through its pid file), else the default of its Settings class."""
    if service == "notifier":
        from integr8scode_notifier.config import Settings as Notifier  # noqa: PLC0415

        fields = Notifier.model_fields
    else:
        from integr8scode_dlq_processor.config import Settings as Dlq  # noqa: PLC0415

        fields = Dlq.model_fields
    names = {f"{prefix}{knob.upper()}": knob for knob in knobs}
    environment: dict[str, str] = {}
    try:
        pid = (RUN_DIR / "pids" / f"svc-{service}.pid").read_text().strip()
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            key, _, value = entry.decode(errors="replace").partition("=")
            if key in names:
                environment[key] = value
    except OSError:
        pass  # not running natively here: the defaults
    settings: dict[str, str] = {}
    for env_name, knob in names.items():
        default = fields[knob].default
        settings[env_name] = environment.get(env_name, str(getattr(default, "value", default)))
    return settings


def _notifier_environment() -> dict[str, str]:
    """The running notifier's environment, to start it again exactly as it was (this
    process's own, as ``uv run`` changed it, when that can't be read)."""
    try:
        pid = (RUN_DIR / "pids" / "svc-notifier.pid").read_text().strip()
        entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return dict(os.environ)
    pairs = (e.decode(errors="surrogateescape").partition("=") for e in entries if e)
    return {key: value for key, _, value in pairs}


def _leave_as_it_was(env: dict[str, str]) -> None:
    """Whatever failed on the way: the notifier runs again, with the environment it had."""
    running = RUN_DIR / "pids" / "svc-notifier.pid"
    now = _notifier_environment()
    if running.exists() and now | {"_": ""} == env | {"_": ""}:  # `_`: set by the shell
        return
    _notifier("stop", env)
    _notifier("start", env)


def _notifier(command: str, env: dict[str, str]) -> None:
    """``services.sh stop|start notifier`` (start waits until it is ready)."""
    services = ROOT / "deploy" / "local" / "components" / "services.sh"
    subprocess.run(["bash", str(services), command, "notifier"], check=True, env=env)


def _dead_letter_lines(samples: list[DeadLetterSample | None]) -> list[str]:
    done = [s for s in samples if s is not None]
    lines = [f"dead-letter round trip: {len(done)} of {len(samples)} samples delivered"]
    for s in sorted(done, key=lambda s: s.delivered_ms):
        lines.append(
            f"  finished_at -> dead letter listed {s.dead_lettered_ms:7.0f} ms, "
            f"-> delivered {s.delivered_ms:7.0f} ms ({s.refused} answers 500 before)"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=50)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backlog", type=int, default=100, help="executions queued for step 2")
    parser.add_argument("--dlq-samples", type=int, default=4)
    parser.add_argument("--wait", type=float, default=60.0, help="longest wait for deliveries")
    parser.add_argument(
        "--skip-restarts",
        action="store_true",
        help="no backlog rounds and no tracing-off round (the notifier is not restarted)",
    )
    args = parser.parse_args()
    n, c, wait = args.executions, args.clients, args.wait

    untraced: Round | None = None
    drained: dict[str, Round] = {}
    if not args.skip_restarts:
        as_it_was = _notifier_environment()
        untraced_env = as_it_was | {"OTEL_SDK_DISABLED": "true"}
        try:
            drained["off"] = await latency_round(
                "backlog, notifier tracing off", args.backlog, c, wait, backlog_env=untraced_env
            )
            await latency_round("warm-up", 4, 2, wait)
            untraced = await latency_round(f"{c} clients, notifier tracing off", n, c, wait)
        finally:
            try:
                drained["on"] = await latency_round(
                    "backlog, tracing on", args.backlog, c, wait, backlog_env=as_it_was
                )
            finally:
                await asyncio.to_thread(_leave_as_it_was, as_it_was)
    await latency_round("warm-up", 4, 2, wait)
    traced = await latency_round(f"{c} clients, tracing on", n, c, wait)
    dead_letters, bystander = await dead_letter_round(args.dlq_samples, wait)

    print(f"\nnotification latency — {os.cpu_count()} cores, script {SCRIPT!r}")
    for run in (traced, untraced, *drained.values()):
        if run is not None:
            print("\n".join(run.lines()))
    print("\n".join(_dead_letter_lines(dead_letters)))
    print("\n".join(bystander.lines()))
    notifier = _running_settings("notifier", "NOTIFIER_", NOTIFIER_KNOBS)
    dlq = _running_settings("dlq-processor", "DLQ_", DLQ_KNOBS)
    print("  backoffs: " + ", ".join(f"{k}={v}" for k, v in notifier.items()))
    print("            " + ", ".join(f"{k}={v}" for k, v in dlq.items()))
    print(
        "  (notifier: attempt n+1 waits U[c/2, c], c = min(max, initial * 2^(n-1)); "
        "DLQ: retry n waits by its jitter under min(max, initial * multiplier^(n-1)), "
        "found within a poll)"
    )
    if untraced is not None:
        for channel in ("webhook", "slack"):
            on: Latencies = getattr(traced, channel)
            off: Latencies = getattr(untraced, channel)
            print(
                f"tracing on vs off, {channel} latency: p50 {on.pct(50) / off.pct(50):.2f}x, "
                f"p95 {on.pct(95) / off.pct(95):.2f}x"
            )
    on_backlog, off_backlog = drained.get("on"), drained.get("off")
    if on_backlog and off_backlog and on_backlog.backlog and off_backlog.backlog:
        print(
            f"tracing on vs off, backlog drain rate: "
            f"{on_backlog.backlog.rate / off_backlog.backlog.rate:.0%} of untraced"
        )


if __name__ == "__main__":
    asyncio.run(main())
