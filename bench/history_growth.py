"""Does cost grow with history? The same measurements against the store as found and after
seeding it with N executions and M events, side by side.

    INTEGR8SCODE_RUN=... uv run --no-sync python bench/history_growth.py \\
        --executions 100000 --events 1000000

Needs the running stack and services (`make up`). In one run:
1. two real users: one who never runs anything, one with history (it runs a few real
   executions, whose ids the per-call measurements use);
2. against the store as found: the execute closed loop (bench/execute_roundtrip.py's, with
   CPU and Mongo commands per execution from bench/stack_probe.py) and each API call a user or
   an operator makes, R times one after the other, p50/p95;
3. the seed (bench/history_seed.py): N executions over U seeded users (H of them the history
   user's) with their results and terminal sagas, and M events in the event store, inserted in
   batches; how long it took;
4. step 2 again on the seeded store, ``--seeded-rounds`` times (the first can share the machine
   with the store's own work after the bulk load; the last is compared);
5. per call, seeded/empty for p50 and p95, and for the throughput, against issue 13's goal
   (within 10 %), never asserted;
6. every seeded document removed (also on Ctrl-C), unless ``--keep``; ``--cleanup`` removes
   what earlier runs left (``--keep``, a kill) and exits.

The baseline is the store as found (its sizes are printed): on a fresh stack that is empty.
Whole-stack figures: anything else running meanwhile shows in them. On FerretDB's SQLite
backend a query not by ``_id`` decodes the whole collection, so a large seed slows every user
of the stack while it is there: run full sizes on a machine nobody else uses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

import history_seed
import issue_goals
import machine_speed
import proc_cpu
import stack_probe
from admin_login import admin_headers
from execute_roundtrip import API, SCRIPT, TERMINAL, Run, closed_loop

REPLAY = f"http://127.0.0.1:{os.environ.get('REPLAY_PORT', '8003')}"
DLQ = f"http://127.0.0.1:{os.environ.get('DLQ_PORT', '8002')}"
MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
DATABASE = os.environ.get("MONGO_DATABASE", "integr8scode")
SIZED = ("executions", "execution_results", "sagas", "events", "users", "dead_letters")
THROUGHPUT_KEPT = issue_goals.Goal(
    "throughput seeded / empty", 0.90, None, "", higher_is_better=True
)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Account:
    user_id: str
    headers: dict[str, str]


async def account(http: httpx.AsyncClient) -> Account:
    name, password = f"bench_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    await http.post(f"{API}/api/v1/auth/register", json={"username": name, "password": password})
    login = await http.post(
        f"{API}/api/v1/auth/login", json={"username": name, "password": password}
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me = await http.get(f"{API}/api/v1/auth/me", headers=headers)
    me.raise_for_status()
    return Account(me.json()["id"], headers)


async def run_execution(http: httpx.AsyncClient, user: Account, wait_s: float = 60) -> str:
    """One real execution, waited for in its POST (``?wait=true``, no polling GETs to meet the
    rate limit); its id."""
    response = await http.post(
        f"{API}/api/v1/execute",
        params={"wait": "true"},
        json={"script": SCRIPT, "language": "python"},
        headers=user.headers,
        timeout=wait_s,
    )
    response.raise_for_status()
    body = response.json()
    if body["status"] not in TERMINAL:
        raise RuntimeError(f"execution {body['execution_id']} not terminal: {body['status']}")
    execution_id: str = body["execution_id"]
    return execution_id


@dataclass
class Targets:
    """Who and what the calls are about; the same in both rounds."""

    newcomer: Account  # never ran anything
    veteran: Account  # ran executions, and gets the seeded history
    execution_id: str  # one of the veteran's real executions
    admin: dict[str, str]


Call = Callable[[httpx.AsyncClient, Targets], Awaitable[httpx.Response | None]]


async def _sse_first_event(http: httpx.AsyncClient, t: Targets) -> httpx.Response | None:
    url = f"{API}/api/v1/executions/{t.execution_id}/events"
    async with http.stream("GET", url, headers=t.veteran.headers) as stream:
        if stream.status_code != 200:
            return stream
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                json.loads(line[6:])
                return stream
    return None


def _dry_run(filters: dict[str, Any]) -> Call:
    async def call(http: httpx.AsyncClient, t: Targets) -> httpx.Response:
        body = {"filters": filters, "dry_run": True, "max_events": 1000}
        return await http.post(f"{REPLAY}/api/v1/replay/sessions", json=body, headers=t.admin)

    return call


def _get(base: str, path: str, who: str) -> Call:
    async def call(http: httpx.AsyncClient, t: Targets) -> httpx.Response:
        headers = {
            "newcomer": t.newcomer.headers,
            "veteran": t.veteran.headers,
            "admin": t.admin,
        }[who]
        return await http.get(base + path.format(execution_id=t.execution_id), headers=headers)

    return call


CALLS: dict[str, Call] = {
    "GET /auth/me": _get(API, "/api/v1/auth/me", "veteran"),
    "GET /runtimes": _get(API, "/api/v1/runtimes", "veteran"),
    # Pages of 20 (the veteran runs 20 real ones first): a page the same size in every round.
    "GET /executions (user with none)": _get(API, "/api/v1/executions?limit=20", "newcomer"),
    "GET /executions (user with history)": _get(API, "/api/v1/executions?limit=20", "veteran"),
    "GET /executions/{id}": _get(API, "/api/v1/executions/{execution_id}", "veteran"),
    "GET /executions/{id}/events 1st event": _sse_first_event,
    "GET /notifications/settings": _get(API, "/api/v1/notifications/settings", "veteran"),
    "GET /notifications": _get(API, "/api/v1/notifications", "veteran"),
    "POST replay dry run (execution)": lambda http, t: _dry_run({"execution_id": t.execution_id})(
        http, t
    ),
    "POST replay dry run (event type)": _dry_run({"event_types": ["execution.completed"]}),
    "GET /replay/sessions": _get(REPLAY, "/api/v1/replay/sessions?limit=20", "admin"),
    "GET /dlq/messages": _get(DLQ, "/api/v1/dlq/messages", "admin"),
    "GET /dlq/stats": _get(DLQ, "/api/v1/dlq/stats", "admin"),
}


@dataclass
class Round:
    name: str
    sizes: dict[str, int]
    loop: Run
    cost: stack_probe.PhaseCost | None
    latencies_ms: dict[str, list[float]]
    errors: dict[str, str]
    notes: dict[str, str]  # what a dry run counted ("at least": its count stopped at its budget)
    canary_ms: float  # machine_speed's canary, the mean of before and after the closed loop

    @property
    def sandbox_ms(self) -> float:
        """The sandboxes' CPU per execution in the closed loop: work no store can change."""
        parts = self.cost.cpu.parts.get(proc_cpu.SPLIT[1]) if self.cost else None
        n = len(self.loop.latencies_ms) + self.loop.failures
        return parts[2] * 1000 / n if parts and n else math.nan


async def measure(
    name: str,
    db: AsyncDatabase[dict[str, Any]],
    http: httpx.AsyncClient,
    t: Targets,
    args: argparse.Namespace,
) -> Round:
    sizes = {c: await db[c].estimated_document_count() for c in SIZED}
    await closed_loop("warm-up", 2, 3, "sse")
    probe = stack_probe.StackProbe()
    canary_before = machine_speed.canary_ms()
    loop = await closed_loop(f"{name}: closed loop", args.clients, args.duration, "sse", probe)
    canary = (canary_before + machine_speed.canary_ms()) / 2
    latencies: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    notes: dict[str, str] = {}
    for label, call in CALLS.items():
        latencies[label] = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            try:
                response = await call(http, t)
            except httpx.TransportError as exc:  # a service restarted, say: noted, not fatal
                errors[label] = f"{type(exc).__name__} {exc}"
                continue
            elapsed = (time.perf_counter() - start) * 1000
            if response is None or response.status_code >= 300:
                status = "no event" if response is None else str(response.status_code)
                errors[label] = f"{status} {'' if response is None else response.text[:120]}"
                continue
            latencies[label].append(elapsed)
            if label.startswith("POST replay"):
                body = response.json()
                bound = "at least " if body.get("matched_is_lower_bound") else ""
                notes[label] = f"matched {bound}{body.get('matched')}"
    return Round(name, sizes, loop, probe.result, latencies, errors, notes, canary)


def ratio(seeded: float, empty: float) -> float:
    """A seeded round's figure over the empty round's (NaN when the empty one is 0)."""
    return seeded / empty if empty else float("nan")


def report(empty: Round, rounds: list[Round], seed: history_seed.SeedReport) -> list[str]:
    """Every round's closed loop; the calls and the goals from the last seeded round (the
    first can still share the machine with the store's own work after a bulk load, e.g.
    PostgreSQL's autovacuum analysing a million new rows)."""
    seeded = rounds[-1]
    lines = [
        f"\nhistory growth — {os.cpu_count()} cores; seed: {seed.documents} documents "
        f"({', '.join(f'{c} {n}' for c, n in seed.counts.items())}) in {seed.seconds:.1f} s "
        f"= {seed.documents / seed.seconds:.0f} documents/s",
        "store sizes (estimated): "
        + "; ".join(f"{c} {empty.sizes[c]} → {seeded.sizes[c]}" for c in SIZED),
        "",
        empty.loop.line(),
        *(r.loop.line() for r in rounds),
    ]
    for r in (empty, *rounds):
        if r.cost is not None:
            n = max(len(r.loop.latencies_ms) + r.loop.failures, 1)
            mongo_ops = sum(r.cost.mongo.values()) / n
            wire = next((s for c, s in r.cost.cpu.seconds.items() if c.startswith("mongo")), 0.0)
            lines.append(
                f"  {r.name}: CPU {r.cost.cpu.attributed_s * 1000 / n:.0f} ms/execution, of "
                f"which Mongo-wire {wire * 1000 / n:.0f} ms; {mongo_ops:.1f} Mongo commands/exec"
            )
    lines.append(
        "  machine speed, work no store changes (Python canary, before and after the loop; "
        "the sandboxes' CPU per execution), against the empty round:"
    )
    for r in (empty, *rounds):
        canary = ratio(r.canary_ms, empty.canary_ms)
        sandboxes = ratio(r.sandbox_ms, empty.sandbox_ms)
        lines.append(
            f"    {r.name}: canary {r.canary_ms:.1f} ms ({canary:.0%}), "
            f"sandboxes {r.sandbox_ms:.1f} ms ({sandboxes:.0%})"
        )
    lines += [
        "",
        f"{'call':40} {'empty p50':>9} {'p95':>7} {'seeded p50':>10} {'p95':>7}"
        f" {'p50 ratio':>9} {'p95 ratio':>9}",
    ]
    for label in CALLS:
        a, b = empty.latencies_ms[label], seeded.latencies_ms[label]
        lines.append(
            f"{label:40} {pct(a, 50):9.1f} {pct(a, 95):7.1f} {pct(b, 50):10.1f} {pct(b, 95):7.1f}"
            f" {ratio(pct(b, 50), pct(a, 50)):9.2f} {ratio(pct(b, 95), pct(a, 95)):9.2f}"
        )
    for r in (empty, seeded):
        for label, note in r.notes.items():
            lines.append(f"  {r.name}: {label}: {note}")
        for label, error in r.errors.items():
            lines.append(f"  {r.name}: {label} answered {error}")
    lines += ["", "issue 13 goal: cost does not grow with history (measured/goal, not asserted):"]
    kept = ratio(seeded.loop.rate, empty.loop.rate)
    lines.append("  " + issue_goals.line(THROUGHPUT_KEPT, kept))
    slower = ratio(seeded.canary_ms, empty.canary_ms)
    lines.append(
        f"    the same at the empty round's machine speed (x {slower:.2f}, the canary's "
        f"slow-down): {kept * slower:.0%}; a context line, "
        "not the goal: the canary is one process's Python, the stack is eleven"
    )
    for label in CALLS:
        p50 = ratio(pct(seeded.latencies_ms[label], 50), pct(empty.latencies_ms[label], 50))
        goal = issue_goals.Goal(f"{label} p50", 1.10, None, "", higher_is_better=False)
        lines.append("  " + issue_goals.line(goal, p50))
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000, help="seeded users")
    parser.add_argument("--history", type=int, default=1000, help="of them the veteran's")
    parser.add_argument("--own", type=int, default=20, help="real executions of the veteran")
    parser.add_argument("--batch", type=int, default=1000, help="documents per insert_many")
    parser.add_argument("--concurrency", type=int, default=2, help="insert_many in flight")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=20, help="calls of each kind per round")
    parser.add_argument(
        "--seeded-rounds",
        type=int,
        default=2,
        help="measurements of the seeded store, one after the other; the last is compared",
    )
    parser.add_argument("--keep", action="store_true", help="leave the seeded documents")
    parser.add_argument(
        "--cleanup", action="store_true", help="remove every earlier seed's documents and exit"
    )
    args = parser.parse_args()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO_URL, tz_aware=True)
    db = mongo[DATABASE]
    try:
        if args.cleanup:
            removed = await history_seed.remove(db, None)
            print(f"removed {removed.counts} in {removed.seconds:.1f} s")
            return
        await run(db, args)
    finally:
        await mongo.close()


async def run(db: AsyncDatabase[dict[str, Any]], args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        newcomer, veteran = await account(http), await account(http)
        own = [await run_execution(http, veteran) for _ in range(max(args.own, 1))]
        targets = Targets(newcomer, veteran, own[0], await admin_headers(http, API))
        empty = await measure("empty", db, http, targets, args)
        p = history_seed.plan(
            args.executions,
            args.events,
            users=args.users,
            history_user=veteran.user_id,
            history=args.history,
        )
        print(
            f"seeding run {p.run}: {args.executions} executions, {args.events} events …", flush=True
        )
        seeded_report = history_seed.SeedReport({}, float("nan"))
        try:
            seeded_report = await history_seed.seed(db, p, args.batch, args.concurrency)
            print(f"seeded in {seeded_report.seconds:.1f} s", flush=True)
            rounds = [
                await measure(f"seeded #{i}", db, http, targets, args)
                for i in range(1, args.seeded_rounds + 1)
            ]
            # The figures before the removal: deleting a million documents takes minutes.
            print("\n".join(report(empty, rounds, seeded_report)), flush=True)
        finally:
            if args.keep:
                print(f"kept: remove later with --cleanup (marker {history_seed.MARKER}={p.run})")
            else:
                removed = await history_seed.remove(db, p.run)
                print(f"removed {removed.documents} seeded documents in {removed.seconds:.1f} s")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted (the seed, if any, was removed unless --keep)")
