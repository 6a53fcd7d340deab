"""The bubblewrap sandbox alone: N runs of ``sum(range(10))`` per language, C at a time.

    uv run --no-sync python bench/sandbox_bare.py --runs 200 --concurrency 4

No Kafka, no HTTP, no Mongo: only ``BubblewrapRunner.run`` in a loop, so the figures are the
floor under the whole system's latency. Prints runs/s and p50/p95/p99 latency per language,
the runner's own wall time per run, and which limits this host enforces (cgroups or rlimits
only). ``--no-cgroups`` measures the rlimits-only fallback.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from integr8scode_coordinator.sandbox import SandboxLimits, SandboxRequest
from integr8scode_coordinator.sandbox.bubblewrap import BubblewrapRunner

SCRIPTS = {
    "python": "print(sum(range(10)))",
    "javascript": "console.log([...Array(10).keys()].reduce((a, b) => a + b, 0))",
    "bash": "s=0; for i in 0 1 2 3 4 5 6 7 8 9; do s=$((s + i)); done; echo $s",
}


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


async def bench(runner: BubblewrapRunner, language: str, runs: int, concurrency: int) -> None:
    limits = SandboxLimits(timeout_s=10, memory_mb=128, cpu_time_s=10)
    latencies: list[float] = []
    cpu: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(runs):
        queue.put_nowait(i)

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            i = queue.get_nowait()
            request = SandboxRequest(
                f"bench-{language}-{i}", language, "", SCRIPTS[language], "", limits
            )
            started = time.perf_counter()
            result = await runner.run(request, asyncio.Event())
            latencies.append((time.perf_counter() - started) * 1000)
            cpu.append(result.cpu_time_ms)
            if result.outcome != "completed" or result.stdout != "45\n":
                failures += 1

    await bench_warmup(runner, language, limits)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(
        f"{language:<11} {runs / elapsed:8.1f} runs/s   "
        f"p50 {percentile(latencies, 50):6.1f} ms   p95 {percentile(latencies, 95):6.1f} ms   "
        f"p99 {percentile(latencies, 99):6.1f} ms   cpu/run {statistics.mean(cpu):5.1f} ms   "
        f"failures {failures}"
    )


async def bench_warmup(runner: BubblewrapRunner, language: str, limits: SandboxLimits) -> None:
    """One run first, so page cache and interpreter start-up don't skew the first sample."""
    await runner.run(
        SandboxRequest("warmup", language, "", SCRIPTS[language], "", limits), asyncio.Event()
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--languages", nargs="+", default=list(SCRIPTS))
    parser.add_argument("--no-cgroups", action="store_true", help="rlimits only")
    args = parser.parse_args()
    runner = BubblewrapRunner.detect(use_cgroups=not args.no_cgroups)
    print(f"limits enforced by: {', '.join(runner.enforced_limits)}")
    print(f"runs: {args.runs} per language, concurrency {args.concurrency}")
    for language in args.languages:
        await bench(runner, language, args.runs, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
