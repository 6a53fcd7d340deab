"""libs/events against bare aiokafka, tracing off / on / on without export, in one run.

    uv run --no-sync python bench/events_throughput.py --messages 20000 --concurrency 256

Needs the local stack (Kafka, and the OTel collector for the exporting variant). Three modes,
each run by four variants side by side (bare aiokafka, libs/events with tracing off, tracing on
exporting to the collector, tracing on without export), on topics of their own (`bench-*`,
deleted at the end; the services' topics are never touched):

- `round`: publish N events (concurrency C), then consume them with a consumer group;
- `batch`: the archiver's path (the event store's write side): consume N messages in fetched
  batches of `--batch` with the runner's `batch_handler` mode, decoding each and taking its
  stored trace context, as the archiver does before its one `insert_many` (left out here: it
  would measure the Mongo-wire server, not the library);
- `replay`: read N stored events back and republish each to another topic with the replay
  headers and a link to the original's producer span (fetched batch by batch, a batch
  published concurrently).

The `batch` and `replay` inputs are written once by bare aiokafka with a `traceparent` per
message, as a traced producer leaves them. Ratios are against bare aiokafka of the same mode.
For the traced variants it counts spans created, spans the exporter got acknowledged, and what
the collector received (`otelcol_receiver_accepted_spans_total` and the refused / failed
counters on its Prometheus endpoint); any span lost between them is printed as a drop. The
collector is shared: its counts include whatever else sent spans meanwhile (printed as
`others`). Levers are settings (libs/telemetry README), e.g. `INTEGR8SCODE_OTLP_SPAN_ENCODER=sdk`,
`OTEL_BSP_MAX_QUEUE_SIZE=2048`. Goals (issue 16, never asserted): tracing on >= 80 % of bare,
off >= 90 %.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import secrets
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from integr8scode_events import ExecutionRequested, StoredTraceContext, decode_event
from integr8scode_events import headers as h
from integr8scode_events.envelope import ProducerInfo
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    HandlerRegistry,
    KafkaSettings,
    MessageContext,
    RawMessage,
)
from integr8scode_events.payloads import ExecutionLimits, ExecutionRequestedPayload
from integr8scode_telemetry import TelemetryHandle, TelemetrySettings, init_telemetry
from proc_cpu import parse_stat
from prom_text import parse_samples

BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
OTLP = f"http://127.0.0.1:{os.environ.get('OTLP_GRPC_PORT', '4317')}"
COLLECTOR_METRICS = f"http://127.0.0.1:{os.environ.get('COLLECTOR_TELEMETRY_PORT', '8888')}/metrics"
# Generous: on a shared machine a broker under load can take seconds to take a message.
KAFKA_TIMEOUT_MS = 60_000
MODES = ("round", "batch", "replay")
VARIANTS = ("bare", "off", "on", "local")
LABELS = {
    "bare": "bare aiokafka",
    "off": "libs/events, tracing off",
    "on": "libs/events, tracing on",
    "local": "tracing on, no export",
}


@dataclass
class Result:
    mode: str
    variant: str
    messages: int
    publish_s: float = 0.0
    consume_s: float = 0.0
    cpu_s: float = 0.0  # the process's CPU time over the variant (every thread, export included)
    main_cpu_s: float = 0.0  # the main thread's (the event loop's) CPU time
    child_cpu_s: float = 0.0  # the export child's CPU time (INTEGR8SCODE_SPAN_EXPORT=process)

    @property
    def rate(self) -> float:
        return self.messages / (self.publish_s + self.consume_s)


@dataclass
class SpanCounts:
    created: int = 0
    handed_to_exporter: int = 0
    exported: int = 0
    failed: int = 0
    collector: dict[str, float] = field(default_factory=dict)
    # The export child's CPU ticks at the start of the measured variant (after its warm-up).
    child_ticks_at_start: int = 0

    def __add__(self, other: SpanCounts) -> SpanCounts:
        return SpanCounts(
            self.created + other.created,
            self.handed_to_exporter + other.handed_to_exporter,
            self.exported + other.exported,
            self.failed + other.failed,
            _sum(self.collector, other.collector),
        )


def _sum(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {key: a.get(key, 0.0) + b.get(key, 0.0) for key in a.keys() | b.keys()}


class _CountEnded(SpanProcessor):
    """Counts every span that ended (what the batch processor was offered)."""

    def __init__(self, counts: SpanCounts) -> None:
        self._counts = counts

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        self._counts.created += 1


class _CountingExporter(SpanExporter):
    """The real exporter, counting what it was given and what the receiver acknowledged."""

    def __init__(self, inner: SpanExporter, counts: SpanCounts) -> None:
        self._inner = inner
        self._counts = counts

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._counts.handed_to_exporter += len(spans)
        result = self._inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self._counts.exported += len(spans)
        else:
            self._counts.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


def collector_counters() -> dict[str, float]:
    """The collector's span counters (summed over transports); {} when it can't be read."""
    names = (
        "otelcol_receiver_accepted_spans_total",
        "otelcol_receiver_refused_spans_total",
        "otelcol_receiver_failed_spans_total",
    )
    try:
        with urllib.request.urlopen(COLLECTOR_METRICS, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    totals = dict.fromkeys(names, 0.0)
    for sample in parse_samples(text):
        if sample.name in totals:
            totals[sample.name] += sample.value
    return totals


def bench_event(i: int) -> ExecutionRequested:
    """The message every scenario sends (``events_cpu.py`` too): a small execution request."""
    return ExecutionRequested(
        producer=ProducerInfo(service="bench", version="0"),
        correlation_id=f"bench-{i}",
        execution_id=f"exec-{i % 512}",
        user_id="bench",
        payload=ExecutionRequestedPayload(
            script="print(sum(range(10)))",
            language="python",
            language_version="3.11",
            limits=ExecutionLimits(timeout_s=5, memory_mb=128),
        ),
    )


class Topics:
    """The run's topics, deleted at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def new(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, 3, 1)])
        finally:
            await admin.close()
        self.names.append(name)
        return name

    async def delete_all(self) -> None:
        if not self.names:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await admin.start()
        try:
            await admin.delete_topics(self.names)
        finally:
            await admin.close()


async def _bounded(n: int, concurrency: int, send: Callable[[int], Awaitable[Any]]) -> float:
    """``send(0)`` .. ``send(n - 1)``, at most ``concurrency`` at a time: that many workers
    taking the next index, as a service has its requests in flight and no more (a task per
    message made up front would leave n tasks alive for the garbage collector to scan, a cost
    that grows with the allocations of the variant and that no service pays)."""
    indexes = iter(range(n))

    async def worker() -> None:
        for i in indexes:
            await send(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    return time.perf_counter() - start


def _producer() -> AIOKafkaProducer:
    # The library's producer settings (acks=all, idempotent, linger 0).
    return AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True)


def _consumer(topic: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


async def fill(topic: str, n: int, concurrency: int) -> None:
    """N events as a traced producer leaves them: standard headers and a sampled traceparent."""
    producer = _producer()
    await producer.start()
    try:

        async def send(i: int) -> None:
            e = bench_event(i)
            traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
            headers = [
                (h.EVENT_TYPE, e.event_type.encode()),
                (h.CORRELATION_ID, e.correlation_id.encode()),
                (h.SERVICE, b"bench"),
                (h.TRACEPARENT, traceparent.encode()),
            ]
            await producer.send_and_wait(topic, e.to_bytes(), key=e.key, headers=headers)

        await _bounded(n, concurrency, send)
    finally:
        await producer.stop()


# -- bare aiokafka -----------------------------------------------------------------------------


async def bare_round(topics: Topics, n: int, concurrency: int) -> Result:
    topic = await topics.new()
    values = [bench_event(i) for i in range(n)]
    producer = _producer()
    await producer.start()
    try:

        async def send(i: int) -> None:
            e = values[i]
            await producer.send_and_wait(
                topic, e.to_bytes(), key=e.key, headers=[(h.EVENT_TYPE, e.event_type.encode())]
            )

        publish_s = await _bounded(n, concurrency, send)
    finally:
        await producer.stop()
    consume_s = await _bare_consume(topic, n, 100, _decode_all)
    return Result("round", "bare", n, publish_s, consume_s)


def _decode_all(records: Sequence[Any]) -> None:
    for record in records:
        decode_event(record.value)


def _archive_all(records: Sequence[Any]) -> None:
    for record in records:
        decode_event(record.value)
        StoredTraceContext.from_headers(h.to_dict(record.headers)).fields()


async def _bare_consume(
    topic: str, n: int, max_records: int, handle: Callable[[Sequence[Any]], Any]
) -> float:
    consumer = _consumer(topic)
    await consumer.start()
    start = time.perf_counter()
    seen = 0
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=max_records)
            for records in batch.values():
                result = handle(records)
                if asyncio.iscoroutine(result):
                    await result
                seen += len(records)
            if batch:
                await consumer.commit()
        return time.perf_counter() - start
    finally:
        await consumer.stop()


async def bare_batch(source: str, n: int, max_batch: int) -> Result:
    return Result(
        "batch", "bare", n, consume_s=await _bare_consume(source, n, max_batch, _archive_all)
    )


async def bare_replay(topics: Topics, source: str, n: int, max_batch: int) -> Result:
    target = await topics.new()
    session = uuid.uuid4().hex
    producer = _producer()
    await producer.start()
    try:

        async def republish(records: Sequence[Any]) -> None:
            async def one(record: Any) -> None:
                event = decode_event(record.value)
                headers = [
                    (h.EVENT_TYPE, event.event_type.encode()),
                    (h.CORRELATION_ID, event.correlation_id.encode()),
                    (h.SERVICE, b"bench"),
                    (h.REPLAY_SESSION, session.encode()),
                    (h.REPLAYED_EVENT_ID, str(event.event_id).encode()),
                ]
                await producer.send_and_wait(
                    target, event.to_bytes(), key=event.key, headers=headers
                )

            await asyncio.gather(*(one(record) for record in records))

        consume_s = await _bare_consume(source, n, max_batch, republish)
    finally:
        await producer.stop()
    return Result("replay", "bare", n, consume_s=consume_s)


# -- libs/events -------------------------------------------------------------------------------


def _provider(telemetry: TelemetryHandle | None) -> trace.TracerProvider | None:
    # Tracing off is the API's no-op tracer (what init_telemetry gives with the SDK disabled).
    return telemetry.tracer_provider if telemetry else trace.NoOpTracerProvider()


async def _run_until(runner: ConsumerRunner, done: asyncio.Event) -> float:
    start = time.perf_counter()
    task = asyncio.create_task(runner.run())
    waiter = asyncio.create_task(done.wait())
    finished, _ = await asyncio.wait({task, waiter}, timeout=600, return_when="FIRST_COMPLETED")
    if waiter not in finished:
        waiter.cancel()
        task.cancel()
        raise RuntimeError("the consumer ended or timed out before every message was handled")
    elapsed = time.perf_counter() - start
    runner.stop()
    await task
    return elapsed


async def lib_round(
    topics: Topics, n: int, concurrency: int, telemetry: TelemetryHandle | None, variant: str
) -> Result:
    topic = await topics.new()
    settings = KafkaSettings(bootstrap_servers=BOOTSTRAP, request_timeout_ms=KAFKA_TIMEOUT_MS)
    provider = _provider(telemetry)
    events = [bench_event(i) for i in range(n)]
    done = asyncio.Event()
    seen = 0

    async def handle(event: ExecutionRequested, ctx: MessageContext) -> None:
        nonlocal seen
        seen += 1
        if seen >= n:
            done.set()

    async with EventPublisher(settings, "bench", tracer_provider=provider) as publisher:

        async def send(i: int) -> None:
            await publisher.publish(events[i], topic=topic)

        publish_s = await _bounded(n, concurrency, send)
        runner = ConsumerRunner(
            settings=settings,
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
            topics=[topic],
            publisher=publisher,
            handlers=HandlerRegistry().on(ExecutionRequested, handle),
            tracer_provider=provider,
        )
        consume_s = await _run_until(runner, done)
    return Result("round", variant, n, publish_s, consume_s)


async def lib_batch(
    source: str, n: int, max_batch: int, telemetry: TelemetryHandle | None, variant: str
) -> Result:
    settings = KafkaSettings(bootstrap_servers=BOOTSTRAP, request_timeout_ms=KAFKA_TIMEOUT_MS)
    provider = _provider(telemetry)
    done = asyncio.Event()
    seen = 0

    async def archive(messages: Sequence[RawMessage]) -> None:
        nonlocal seen
        for message in messages:
            decode_event(message.value)
            StoredTraceContext.from_headers(message.headers).fields()
        seen += len(messages)
        if seen >= n:
            done.set()

    async with EventPublisher(settings, "bench", tracer_provider=provider) as publisher:
        runner = ConsumerRunner(
            settings=settings,
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
            topics=[source],
            publisher=publisher,
            batch_handler=archive,
            dead_letter_topic=None,
            span_name="event_store.archive",
            tracer_provider=provider,
            max_batch=max_batch,
        )
        consume_s = await _run_until(runner, done)
    return Result("batch", variant, n, consume_s=consume_s)


async def lib_replay(
    topics: Topics,
    source: str,
    n: int,
    max_batch: int,
    *,
    telemetry: TelemetryHandle | None,
    variant: str,
) -> Result:
    target = await topics.new()
    settings = KafkaSettings(bootstrap_servers=BOOTSTRAP, request_timeout_ms=KAFKA_TIMEOUT_MS)
    provider = _provider(telemetry)
    tracer = trace.get_tracer("bench", tracer_provider=provider)
    session = uuid.uuid4().hex
    done = asyncio.Event()
    seen = 0

    async with EventPublisher(settings, "bench", tracer_provider=provider) as publisher:

        async def one(message: RawMessage) -> None:
            event = decode_event(message.value)
            original = StoredTraceContext.from_headers(message.headers).span_context
            await publisher.publish(
                event,
                topic=target,
                extra_headers={h.REPLAY_SESSION: session, h.REPLAYED_EVENT_ID: str(event.event_id)},
                links=[trace.Link(original)] if original is not None else [],
            )

        async def replay(messages: Sequence[RawMessage]) -> None:
            nonlocal seen
            # One span per batch, as event_replay.batch, its own root (a replay is its own trace).
            with tracer.start_as_current_span("bench.replay.batch", context=Context()):
                await asyncio.gather(*(one(message) for message in messages))
            seen += len(messages)
            if seen >= n:
                done.set()

        runner = ConsumerRunner(
            settings=settings,
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
            topics=[source],
            publisher=publisher,
            batch_handler=replay,
            dead_letter_topic=None,
            tracer_provider=provider,
            max_batch=max_batch,
        )
        consume_s = await _run_until(runner, done)
    return Result("replay", variant, n, consume_s=consume_s)


# -- the run -----------------------------------------------------------------------------------


def _exports_in_child(settings: TelemetrySettings) -> bool:
    try:
        from integr8scode_telemetry.span_export import exports_in_child  # noqa: PLC0415
    except ImportError:  # a checkout from before the export child
        return False
    return exports_in_child(settings)


def _child_ticks(pid: int | None) -> int:
    if pid is None:
        return 0
    try:
        stat = parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return 0
    return stat.utime + stat.stime


def traced(export: bool, counts: SpanCounts) -> TelemetryHandle:
    settings = TelemetrySettings(otlp_endpoint=OTLP if export else None)
    exporter = None
    in_child = export and _exports_in_child(settings)
    if export and not in_child:
        # The exporter init_telemetry would build from these settings, counted.
        inner: SpanExporter | None
        try:
            from integr8scode_telemetry.span_export import otlp_span_exporter  # noqa: PLC0415

            inner = otlp_span_exporter(settings)
        except ImportError:  # a checkout from before issue 16: the SDK's exporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            inner = OTLPSpanExporter(endpoint=OTLP, insecure=True)
        assert inner is not None  # noqa: S101 - an endpoint is set
        exporter = _CountingExporter(inner, counts)
    handle = init_telemetry(
        settings,
        "bench-events",
        "0",
        set_global=False,
        instrument_libraries=False,
        span_exporter=exporter,
    )
    if in_child:
        # What a running service has already: the export child started (its interpreter and
        # gRPC loaded) by an earlier span. Its CPU from here on is the variant's.
        handle.tracer.start_span("bench warm-up").end()
        handle.force_flush(60_000)
        counts.child_ticks_at_start = _child_ticks(getattr(handle.span_processor, "child_pid", 0))
    handle.tracer_provider.add_span_processor(_CountEnded(counts))
    return handle


def _child_counts(handle: TelemetryHandle, counts: SpanCounts) -> None:
    """After shutdown: what the export child did with the spans, less the warm-up span."""
    read_stats = getattr(handle, "span_export_stats", None)  # None: before the export child
    stats = read_stats() if read_stats is not None else None
    if stats is None:
        return
    counts.handed_to_exporter = stats.queued - stats.dropped - 1
    counts.exported = stats.exported - 1
    counts.failed = stats.failed + stats.lost


async def run_variant(
    mode: str,
    variant: str,
    args: argparse.Namespace,
    topics: Topics,
    source: str | None,
) -> tuple[Result, SpanCounts | None]:
    n, c, batch = args.messages, args.concurrency, args.batch
    cpu = time.process_time()
    main_cpu = time.thread_time()
    if variant == "bare":
        if mode == "round":
            result = await bare_round(topics, n, c)
        elif mode == "batch":
            assert source is not None  # noqa: S101
            result = await bare_batch(source, n, batch)
        else:
            assert source is not None  # noqa: S101
            result = await bare_replay(topics, source, n, batch)
        result.cpu_s = time.process_time() - cpu
        result.main_cpu_s = time.thread_time() - main_cpu
        return result, None
    counts = SpanCounts() if variant in {"on", "local"} else None
    telemetry = traced(variant == "on", counts) if counts is not None else None
    # From here: the warm-up (the child's start) is not the variant's.
    cpu, main_cpu = time.process_time(), time.thread_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = collector_counters() if variant == "on" else {}
    try:
        if mode == "round":
            result = await lib_round(topics, n, c, telemetry, variant)
        elif mode == "batch":
            assert source is not None  # noqa: S101
            result = await lib_batch(source, n, batch, telemetry, variant)
        else:
            assert source is not None  # noqa: S101
            result = await lib_replay(
                topics, source, n, batch, telemetry=telemetry, variant=variant
            )
    finally:
        if telemetry is not None:
            telemetry.shutdown()  # flushes every span still queued (and ends the export child)
    result.cpu_s = time.process_time() - cpu
    result.main_cpu_s = time.thread_time() - main_cpu
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    if counts is not None and telemetry is not None:
        _child_counts(telemetry, counts)
        child_s = reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime
        tick = os.sysconf("SC_CLK_TCK")
        result.child_cpu_s = max(0.0, child_s - counts.child_ticks_at_start / tick)
    if counts is not None and before:
        after = await _collector_settled(before, counts.exported)
        counts.collector = {k: after.get(k, 0.0) - v for k, v in before.items()}
    return result, counts


async def _collector_settled(before: dict[str, float], exported: int) -> dict[str, float]:
    """The collector's counters once they show at least what was exported (its metrics are
    updated as requests finish), within a few seconds."""
    deadline = time.monotonic() + 5
    key = "otelcol_receiver_accepted_spans_total"
    while True:
        after = collector_counters()
        if after.get(key, 0.0) - before.get(key, 0.0) >= exported or time.monotonic() > deadline:
            return after
        await asyncio.sleep(0.2)


def report(
    results: list[Result], spans: dict[tuple[str, str], SpanCounts], n: int, c: int, repeat: int
) -> None:
    print(f"\n{n} messages, concurrency {c}, bootstrap {BOOTSTRAP}, collector {OTLP}{heap_note()}")
    if repeat > 1:
        print(
            f"rates and each CPU column: each variant's best of {repeat} interleaved runs "
            "(taken apart); spans: all runs summed"
        )
    print(
        "CPU us/msg: the process's CPU time (all threads, the export included) per message, "
        "from the variant's start to its telemetry's shutdown; bare/CPU: bare's CPU over it "
        "(less disturbed by other load than the rates); main: the main thread's (the event "
        "loop's) CPU; child: the export child's CPU (INTEGR8SCODE_SPAN_EXPORT=process, after "
        "its start-up)"
    )
    columns = (
        f"{'publish/s':>10} {'consume/s':>10} {'round/s':>10} {'vs bare':>8} "
        f"{'CPU us/msg':>10} {'bare/CPU':>8} {'main':>6} {'child':>6}"
    )
    print(f"{'mode':7} {'scenario':28} {columns}")
    bare = {r.mode: r for r in results if r.variant == "bare"}
    for r in results:
        publish = f"{n / r.publish_s:10.0f}" if r.publish_s else f"{'-':>10}"
        base = bare.get(r.mode)
        ratio = f"{r.rate / base.rate:8.0%}" if base else f"{'-':>8}"
        cpu = f"{r.cpu_s / n * 1e6:10.0f}"
        cpu_ratio = f"{base.cpu_s / r.cpu_s:8.0%}" if base and r.cpu_s else f"{'-':>8}"
        main = f"{r.main_cpu_s / n * 1e6:6.0f}"
        child = f"{r.child_cpu_s / n * 1e6:6.0f}" if r.child_cpu_s else f"{'-':>6}"
        print(
            f"{r.mode:7} {LABELS[r.variant]:28} {publish} {n / r.consume_s:10.0f} "
            f"{r.rate:10.0f} {ratio} {cpu} {cpu_ratio} {main} {child}"
        )
    if spans:
        print("\nspans: created (ended), handed to the exporter, acknowledged by the collector;")
        print("collector: its receiver's accepted / refused / failed counters over the same time")
        print(
            f"{'mode':7} {'scenario':28} {'created':>8} {'to exp.':>8} {'acked':>8} "
            f"{'accepted':>9} {'refused':>8} {'failed':>7} {'others':>7} {'DROPPED':>8}"
        )
    for (mode, variant), s in spans.items():
        accepted = s.collector.get("otelcol_receiver_accepted_spans_total")
        refused = s.collector.get("otelcol_receiver_refused_spans_total", 0.0)
        failed = s.collector.get("otelcol_receiver_failed_spans_total", 0.0)
        if variant == "local":
            dropped = "-"
            col = f"{'-':>9} {'-':>8} {'-':>7} {'-':>7}"
        else:
            lost = s.created - s.exported + int(refused + failed)
            dropped = str(lost)
            others = f"{accepted - s.exported:7.0f}" if accepted is not None else f"{'?':>7}"
            acc = f"{accepted:9.0f}" if accepted is not None else f"{'?':>9}"
            col = f"{acc} {refused:8.0f} {failed:7.0f} {others}"
        print(
            f"{mode:7} {LABELS[variant]:28} {s.created:8d} {s.handed_to_exporter:8d} "
            f"{s.exported:8d} {col} {dropped:>8}"
        )
    for mode, base in bare.items():
        on = next((r for r in results if r.mode == mode and r.variant == "on"), None)
        off = next((r for r in results if r.mode == mode and r.variant == "off"), None)
        if on and off:
            print(
                f"{mode}: tracing on {on.rate / base.rate:.0%} of bare (goal 80 %), "
                f"off {off.rate / base.rate:.0%} (goal 90 %); on/off {on.rate / off.rate:.0%}"
            )


def _best(kept: Result | None, new: Result) -> Result:
    """The best rate, and separately the least CPU of each kind (the least disturbed run)."""
    if kept is None:
        return new
    faster = new if new.rate > kept.rate else kept
    return Result(
        faster.mode,
        faster.variant,
        faster.messages,
        faster.publish_s,
        faster.consume_s,
        cpu_s=min(kept.cpu_s, new.cpu_s),
        main_cpu_s=min(kept.main_cpu_s, new.main_cpu_s),
        child_cpu_s=min(kept.child_cpu_s, new.child_cpu_s),
    )


def freeze_after_start_up() -> None:
    """What a service does once started: its modules (the exporter's gRPC too) loaded, then
    ``gc.freeze()`` and the garbage collector's young threshold (``HeapSettings``, so
    ``INTEGR8SCODE_GC_YOUNG_THRESHOLD`` applies here too)."""
    try:
        import integr8scode_telemetry.span_export  # noqa: F401, PLC0415 - loaded, as in a service
    except ImportError:  # a checkout from before issue 16
        import opentelemetry.exporter.otlp.proto.grpc.trace_exporter  # noqa: F401, PLC0415
    try:
        from integr8scode_telemetry.heap import HeapSettings, freeze_start_up_heap  # noqa: PLC0415
    except ImportError:  # a checkout from before the young threshold: freeze only
        gc.collect()
        gc.freeze()
        return
    freeze_start_up_heap(HeapSettings().gc_young_threshold)


def heap_note() -> str:
    """What ``freeze_after_start_up`` did, for a report's header line ("" if not called)."""
    if not gc.get_freeze_count():
        return ""
    return f", gc.freeze() after start-up, young threshold {gc.get_threshold()[0]}"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument(
        "--batch",
        type=int,
        default=500,
        help="max records per fetch (batch, replay; the archiver's default)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every variant this many times, interleaved, and report each one's best "
        "(on a shared machine the best run is the one least disturbed)",
    )
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated of {MODES}")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated of {VARIANTS}"
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() and the young threshold once everything is imported, as the services "
        "do after start-up: what is alive then leaves the garbage collector's scans",
    )
    args = parser.parse_args()
    if args.gc_freeze:
        freeze_after_start_up()
    modes = [m for m in args.modes.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    if unknown := (set(modes) - set(MODES)) | (set(variants) - set(VARIANTS)):
        parser.error(f"unknown mode or variant: {', '.join(sorted(unknown))}")

    topics = Topics()
    results: list[Result] = []
    spans: dict[tuple[str, str], SpanCounts] = {}
    try:
        for mode in modes:
            source = None
            if mode != "round":
                source = await topics.new()
                await fill(source, args.messages, args.concurrency)
            best: dict[str, Result] = {}
            for _ in range(max(1, args.repeat)):
                for variant in variants:
                    result, counts = await run_variant(mode, variant, args, topics, source)
                    print(
                        f"  {mode} / {LABELS[variant]}: {result.rate:.0f}/s, CPU "
                        f"{result.cpu_s / args.messages * 1e6:.0f} us/msg",
                        flush=True,
                    )
                    best[variant] = _best(best.get(variant), result)
                    if counts is not None:
                        # Every run's spans count: a drop in any of them is a drop.
                        spans[(mode, variant)] = spans.get((mode, variant), SpanCounts()) + counts
            results.extend(best[variant] for variant in variants)
    finally:
        await topics.delete_all()
    report(results, spans, args.messages, args.concurrency, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
