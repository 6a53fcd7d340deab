"""Where a measured phase's cost went, across the whole stack: CPU-seconds per process tree,
Mongo-wire commands and Kafka messages, each snapshotted at the phase's start and end.

These are whole-stack counts: everything the stack did during the phase is in them, the
benchmark's own load and anybody else's (another test run, a replay) alike; the machine's CPU
outside the stack's processes is printed as "rest of the machine" to show how much else ran.
Reads only /proc, FerretDB's Prometheus endpoint and Kafka's end offsets.
"""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

import proc_cpu
from prom_text import counter_delta, parse_samples, sum_by_label

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = Path(os.environ.get("INTEGR8SCODE_RUN", ROOT / ".local"))
BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
FERRETDB_METRICS = f"http://127.0.0.1:{os.environ.get('FERRETDB_DEBUG_PORT', '8088')}/debug/metrics"
MONGO_REQUESTS = "ferretdb_client_requests_total"


async def mongo_commands() -> dict[str, float]:
    """FerretDB's requests so far by command; empty when its endpoint does not answer (a real
    MongoDB has none)."""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(FERRETDB_METRICS)
            response.raise_for_status()
    except httpx.HTTPError:
        return {}
    return sum_by_label(parse_samples(response.text), MONGO_REQUESTS, "command")


async def _partitions() -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        described = await admin.describe_topics(list(await admin.list_topics()))
    finally:
        await admin.close()
    return [
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if d["error_code"] == 0
        for p in d["partitions"]
    ]


async def _end_offsets(partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    # Assigned before start, the consumer fetches their metadata at once; asked for offsets of
    # partitions it was never assigned, it waits for a periodic refresh (seconds).
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    consumer.assign(partitions)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await asyncio.wait_for(
            consumer.end_offsets(partitions), timeout=10
        )
    finally:
        await consumer.stop()
    return ends


async def kafka_end_offsets() -> dict[str, int]:
    """The sum of every partition's end offset, per topic (internal topics included: consumer
    offset commits land in ``__consumer_offsets``). Tests create and delete topics all the
    time: when one vanishes between the listing and the offsets, the listing is taken again."""
    for attempt in range(3):
        partitions = await _partitions()
        try:
            ends = await _end_offsets(partitions)
            break
        except (KafkaError, TimeoutError):
            if attempt == 2:
                raise
    per_topic: dict[str, int] = {}
    for tp, end in ends.items():
        per_topic[tp.topic] = per_topic.get(tp.topic, 0) + end
    return per_topic


@dataclass
class PhaseCost:
    cpu: proc_cpu.CpuUse
    mongo: dict[str, float]  # commands during the phase, by command
    kafka: dict[str, float]  # messages appended during the phase, by topic
    wall_s: float


class StackProbe:
    """Snapshots the stack around a phase: ``await start()``, run it, ``await stop()``."""

    def __init__(self, run_dir: Path = RUN_DIR) -> None:
        self._run_dir = run_dir
        self._cpu: proc_cpu.CpuSnapshot | None = None
        self._mongo: dict[str, float] = {}
        self._kafka: dict[str, int] = {}
        self._t0 = 0.0
        self.result: PhaseCost | None = None

    async def start(self) -> None:
        # The slower snapshots first, so the CPU window is the phase's and nothing else.
        self._mongo, self._kafka = await asyncio.gather(mongo_commands(), kafka_end_offsets())
        self._cpu = proc_cpu.snapshot(self._run_dir)
        self._t0 = asyncio.get_running_loop().time()

    async def stop(self) -> None:
        if self._cpu is None:
            raise RuntimeError("StackProbe.stop() before start()")
        wall = asyncio.get_running_loop().time() - self._t0
        cpu = proc_cpu.difference(self._cpu, proc_cpu.snapshot(self._run_dir))
        mongo, kafka = await asyncio.gather(mongo_commands(), kafka_end_offsets())
        kafka_delta = counter_delta(
            {k: float(v) for k, v in self._kafka.items()}, {k: float(v) for k, v in kafka.items()}
        )
        self.result = PhaseCost(cpu, counter_delta(self._mongo, mongo), kafka_delta, wall)


def _fmt(value: float, unit: str = "") -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}{unit}"


def _per(value: float, by: float) -> float:
    return value / by if by else float("nan")


def _counts(title: str, counts: dict[str, float], n: int) -> list[str]:
    total = sum(v for v in counts.values() if not math.isnan(v))
    lines = [f"  {title}: {total / n:.1f} in all"]
    lines.extend(
        f"    {key:34} {count / n:8.2f}"
        for key, count in sorted(counts.items(), key=lambda kv: -kv[1])
        if count
    )
    return lines


def report(cost: PhaseCost, executions: int, run_dir: Path = RUN_DIR) -> list[str]:
    """The lines that say where the phase's cost went, per execution."""
    n = max(executions, 1)
    cpu, wall = cost.cpu, cost.wall_s
    lines = [
        f"\ncost per execution over the closed loop ({executions} executions in {wall:.1f} s; "
        f"whole-stack counts, pids from {run_dir / 'pids'}):",
        f"  {'CPU by process tree':38} {'ms/exec':>8} {'share':>7} {'cores':>6}",
    ]
    rows = [(c, s, _fmt(_per(s, cpu.attributed_s) * 100, "%")) for c, s in cpu.seconds.items()]
    rows.append(("total (the processes above)", cpu.attributed_s, "100%"))
    rows.append(("rest of the machine (not the stack)", cpu.unattributed_s, ""))
    for name, seconds, share in rows:
        lines.append(
            f"  {name:38} {_fmt(seconds * 1000 / n):>8} {share:>7} {_fmt(_per(seconds, wall)):>6}"
        )
        for part, part_s in zip(proc_cpu.PARTS, cpu.parts.get(name, ()), strict=False):
            lines.append(f"    {part:36} {_fmt(part_s * 1000 / n):>8}")
    lines.append(
        f"  machine busy {_fmt(_per(cpu.machine_busy_s, cpu.cores_s) * 100, '%')} "
        f"of {os.cpu_count()} cores over the phase"
    )
    missing = [c for c in [*proc_cpu.COMPONENTS, proc_cpu.BENCH_CLIENT] if c not in cpu.seconds]
    if missing:
        lines.append(f"  not running (no pid file or no process): {', '.join(missing)}")
    restarted = [c for c, s in cpu.seconds.items() if math.isnan(s)]
    if restarted:
        lines.append(f"  restarted during the phase, not counted: {', '.join(restarted)}")
    if cost.mongo:
        lines.extend(_counts("Mongo-wire commands per execution (FerretDB)", cost.mongo, n))
    else:
        lines.append("  Mongo-wire commands: FerretDB's metrics endpoint did not answer")
    lines.extend(_counts("Kafka messages per execution (appended, by topic)", cost.kafka, n))
    return lines


def compare(*phases: tuple[str, PhaseCost, int]) -> list[str]:
    """CPU ms per execution by process, phases side by side (e.g. tracing on and off), with
    the difference of the first two: which processes a setting's cost lands in."""
    names = [name for name, _, _ in phases]
    components = list(dict.fromkeys(c for _, cost, _ in phases for c in cost.cpu.seconds))
    header = "".join(f" {name:>11}" for name in names)
    diff = len(phases) >= 2
    lines = [
        "\nCPU ms per execution by process, side by side:",
        f"  {'process tree':38}{header}" + (f" {'difference':>11}" if diff else ""),
    ]

    def row(label: str, values: list[float]) -> str:
        cells = "".join(f" {_fmt(v):>11}" for v in values)
        return f"  {label:38}{cells}" + (f" {_fmt(values[0] - values[1]):>11}" if diff else "")

    for component in components:
        values = [
            _per(cost.cpu.seconds.get(component, float("nan")) * 1000, max(n, 1))
            for _, cost, n in phases
        ]
        lines.append(row(component, values))
        if all(component in cost.cpu.parts for _, cost, _ in phases):
            for i, part in enumerate(proc_cpu.PARTS):
                split = [
                    _per(cost.cpu.parts[component][i] * 1000, max(n, 1)) for _, cost, n in phases
                ]
                lines.append(row(f"  {part}", split))
    lines.append(
        row("total", [_per(cost.cpu.attributed_s * 1000, max(n, 1)) for _, cost, n in phases])
    )
    mongo = [_per(sum(cost.mongo.values()), max(n, 1)) for _, cost, n in phases]
    lines.append(row("Mongo-wire commands", mongo))
    return lines
