"""A hello world per language: the sandbox alone (each phase), and POST → terminal via the API.

    uv run --no-sync python bench/languages.py --runs 5 [--api] [--variants]

1. The bubblewrap runner alone (no Kafka, HTTP or Mongo): the median of ``--runs`` hello
   worlds per language, run one at a time, with the compile and run phases' own wall times.
2. ``--api``: the same hello worlds through the running stack (``API_PORT``, default 8000):
   POST /api/v1/execute?wait=true (answered with the result when it ends), the median per
   language. A language the running coordinators don't offer is named, not timed.
3. ``--variants``: the choices made for the compile phase, measured the same way as (1): a Go
   program using net/http and encoding/json (the precompiled standard library at work); rustc
   with and without ``-O``; javac then java, against java's single-file source launcher
   (``java Main.java``, which compiles in memory on every run).

Prints figures, never pass/fail. Run on a quiet machine: two cores shared with other work make
every figure larger (the ``load`` line says how busy the machine was).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from integr8scode_coordinator.sandbox import SandboxLimits, SandboxRequest, SandboxResult
from integr8scode_coordinator.sandbox.bubblewrap import BubblewrapRunner
from integr8scode_coordinator.sandbox.languages import LANGUAGES, WORKDIR, java_heap_mb

# The hello worlds are the tests' (tests/language_programs.py): one table for both.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.language_programs import HELLO

LIMITS = SandboxLimits(timeout_s=10, memory_mb=128, cpu_time_s=10)
TERMINAL = {"completed", "failed", "timed_out", "cancelled"}
# More of the standard library than a hello world: what the precompiled GOROOT/pkg saves.
GO_NET_HTTP = (
    'package main\n\nimport (\n\t"encoding/json"\n\t"fmt"\n\t"net/http"\n)\n\n'
    'func main() {\n\tb, _ := json.Marshal(map[string]int{"hello": http.StatusOK})\n'
    "\tfmt.Println(string(b))\n}\n"
)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def sandbox_runs(
    runner: BubblewrapRunner, language: str, runs: int, script: str | None = None
) -> tuple[list[float], list[float], list[float], SandboxResult]:
    totals: list[float] = []
    compiles: list[float] = []
    executes: list[float] = []
    result: SandboxResult | None = None
    for i in range(runs):
        request = SandboxRequest(
            f"bench-{language}-{i}", language, "", script or HELLO[language], "", LIMITS
        )
        started = time.perf_counter()
        result = await runner.run(request, asyncio.Event())
        totals.append((time.perf_counter() - started) * 1000)
        executes.append(result.wall_time_ms)
        if result.compile is not None:
            compiles.append(result.compile.wall_time_ms)
    if result is None:
        raise ValueError("runs must be at least 1")
    return totals, compiles, executes, result


async def sandbox_table(runner: BubblewrapRunner, runs: int) -> dict[str, float]:
    offered = {r.language: r for r in runner.runtimes()}
    print(f"\n1. sandbox only: median of {runs} hello worlds, one at a time (ms)")
    print(f"{'language':<11} {'version':<9} {'compiled':<9} {'total':>8} {'compile':>8} {'run':>8}")
    totals: dict[str, float] = {}
    for language in HELLO:
        runtime = offered.get(language)
        if runtime is None:
            print(f"{language:<11} not on this host")
            continue
        total, compiles, executes, last = await sandbox_runs(runner, language, runs)
        ok = last.outcome == "completed" and last.stdout == "hello, world\n"
        totals[language] = median(total)
        compile_ms = f"{median(compiles):8.0f}" if compiles else f"{'-':>8}"
        print(
            f"{language:<11} {runtime.full_versions[0]:<9} {runtime.compiled!s:<9} "
            f"{median(total):8.0f} {compile_ms} {median(executes):8.0f}"
            + ("" if ok else f"  NOT OK: {last.outcome} {last.error}")
        )
    return totals


async def _user(http: httpx.AsyncClient) -> dict[str, str]:
    name, password = f"bench_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    await http.post("/api/v1/auth/register", json={"username": name, "password": password})
    login = await http.post("/api/v1/auth/login", json={"username": name, "password": password})
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def post_to_terminal(
    http: httpx.AsyncClient, headers: dict[str, str], language: str
) -> tuple[float, dict[str, object]]:
    """One ``POST /execute?wait=true``: the API answers with the result once it ends (no
    polling, which would also count against the caller's rate limit)."""
    submission = {"script": HELLO[language], "language": language}
    started = time.perf_counter()
    response = await http.post("/api/v1/execute?wait=true", json=submission, headers=headers)
    while response.status_code == 429:  # the rate limit: wait as a polite client does
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        started = time.perf_counter()
        response = await http.post("/api/v1/execute?wait=true", json=submission, headers=headers)
    response.raise_for_status()
    if response.status_code != 200:
        raise TimeoutError(f"{language}: not ended within the API's wait ({response.text})")
    body: dict[str, object] = response.json()
    return (time.perf_counter() - started) * 1000, body


async def api_table(runs: int, sandbox: dict[str, float]) -> None:
    base = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
    print(f"\n2. POST -> terminal through {base}: median of {runs}, one at a time (ms)")
    print(f"{'language':<11} {'POST->terminal':>15} {'sandbox':>8} {'rest':>8}")
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        headers = await _user(http)
        runtimes = await http.get("/api/v1/runtimes", headers=headers)
        runtimes.raise_for_status()
        offered = {r["language"] for r in runtimes.json()}
        for language in HELLO:
            if language not in offered:
                print(f"{language:<11} not offered by the running stack")
                continue
            times: list[float] = []
            last: dict[str, object] = {}
            try:
                for _ in range(runs):
                    elapsed, last = await post_to_terminal(http, headers, language)
                    times.append(elapsed)
            except (httpx.HTTPError, TimeoutError) as exc:
                print(f"{language:<11} not measured: {exc}")
                continue
            bare = sandbox.get(language, float("nan"))
            note = "" if last.get("status") == "completed" else f"  NOT OK: {last.get('error')}"
            rest = median(times) - bare
            print(f"{language:<11} {median(times):15.0f} {bare:8.0f} {rest:8.0f}{note}")


def _rust_build(optimise: bool) -> Callable[[str, str, SandboxLimits], list[str]]:
    base = LANGUAGES["rust"].build
    if base is None:
        raise ValueError("rust has no compile phase")

    def build(rustc: str, script: str, limits: SandboxLimits) -> list[str]:
        argv = [a for a in base(rustc, script, limits) if a != "-O"]
        return [argv[0], "-O", *argv[1:]] if optimise else argv

    return build


def _java_launcher(javac: str, script: str, limits: SandboxLimits) -> list[str]:
    return [
        f"{os.path.dirname(javac)}/java",
        f"-Xmx{java_heap_mb(limits)}m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Xshare:auto",
        f"{WORKDIR}/Main.java",
    ]


async def variants(runner: BubblewrapRunner, runs: int) -> None:
    print(f"\n3. variants: median of {runs} (ms): total / compile phase / run phase")
    rust, java = LANGUAGES["rust"], LANGUAGES["java"]
    cases = [
        ("rust (no -O)", "rust", dataclasses.replace(rust, build=_rust_build(False))),
        ("rust -O", "rust", dataclasses.replace(rust, build=_rust_build(True))),
        ("java: javac, java", "java", java),
        ("java Main.java", "java", dataclasses.replace(java, argv=_java_launcher, build=None)),
    ]
    if "go" in {r.language for r in runner.runtimes()}:
        total, compiles, executes, last = await sandbox_runs(runner, "go", runs, GO_NET_HTTP)
        ok = "" if last.outcome == "completed" else f"  NOT OK: {last.error}"
        print(
            f"{'go (net/http, json)':<20} {median(total):6.0f} / {median(compiles):6.0f} / "
            f"{median(executes):6.0f}{ok}"
        )
    for label, language, spec in cases:
        if language not in {r.language for r in runner.runtimes()}:
            continue
        LANGUAGES[language] = spec
        try:
            total, compiles, executes, last = await sandbox_runs(runner, language, runs)
        finally:
            LANGUAGES[language] = rust if language == "rust" else java
        ok = "" if last.stdout == "hello, world\n" else f"  NOT OK: {last.error}"
        compile_ms = f"{median(compiles):6.0f}" if compiles else f"{'-':>6}"
        print(f"{label:<20} {median(total):6.0f} / {compile_ms} / {median(executes):6.0f}{ok}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--api", action="store_true", help="also POST -> terminal via the API")
    parser.add_argument("--variants", action="store_true", help="rustc -O, java's launcher")
    args = parser.parse_args()
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    runner = BubblewrapRunner.detect()
    sandbox = await sandbox_table(runner, args.runs)
    if args.api:
        await api_table(args.runs, sandbox)
    if args.variants:
        await variants(runner, args.runs)
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
