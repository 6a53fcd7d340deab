"""CPU per message of libs/events' own code, tracing off and on (spans recorded, not exported),
without a broker: how each lever of issue 16 was measured.

    uv run --no-sync python bench/events_cpu.py --messages 10000 --repeat 6

The publisher's producer is replaced by one whose deliveries are already acknowledged, and
the consumer runner's per-message and batch paths are called with ready-made records, so
what is timed is the library (envelope, headers, spans, context) and nothing of Kafka's.
Process CPU time (not wall time) per message, each variant's best of `--repeat` interleaved
runs: on a machine others are using, that is the least disturbed figure. Also the OTLP
encoders on the library's own spans: the SDK's and libs/telemetry's (`span_encoding.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from events_throughput import bench_event, freeze_after_start_up, heap_note
from integr8scode_events import ExecutionRequested
from integr8scode_events import headers as h
from integr8scode_events.kafka import (
    ConsumerRunner,
    EventPublisher,
    HandlerRegistry,
    KafkaSettings,
    MessageContext,
    RawMessage,
)
from integr8scode_telemetry import TelemetrySettings, init_telemetry


@dataclass
class _Delivered:
    partition: int
    offset: int


class _Cluster:
    def brokers(self) -> list[Any]:
        return []


class _Client:
    cluster = _Cluster()


class AcknowledgedProducer:
    """Stands in for aiokafka's producer: every message is taken and acknowledged at once."""

    client = _Client()

    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, headers: Any = None
    ) -> asyncio.Future[_Delivered]:
        delivery: asyncio.Future[_Delivered] = asyncio.get_running_loop().create_future()
        delivery.set_result(_Delivered(1, 5))
        return delivery


@dataclass
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    timestamp: int = 0


def _record(i: int, event: ExecutionRequested) -> _Record:
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    return _Record(
        "bench",
        1,
        i,
        event.key,
        event.to_bytes(),
        [
            (h.EVENT_TYPE, event.event_type.encode()),
            (h.CORRELATION_ID, event.correlation_id.encode()),
            (h.SERVICE, b"bench"),
            (h.TRACEPARENT, traceparent.encode()),
        ],
    )


async def _cpu_per_message(n: int, step: Callable[[], Any]) -> float:
    start = time.process_time()
    await step()
    return (time.process_time() - start) / n * 1e6


async def measure(provider: trace.TracerProvider, n: int, batch: int) -> tuple[float, ...]:
    """µs of CPU per message: publish, consume (typed handler), batch mode."""
    settings = KafkaSettings()
    publisher = EventPublisher(settings, "bench", tracer_provider=provider)
    publisher._producer = AcknowledgedProducer()
    publisher._acked_recently_until = float("inf")
    events = [bench_event(i) for i in range(n)]
    records = [_record(i, e) for i, e in enumerate(events)]

    async def publish_all() -> None:
        for event in events:
            await publisher.publish(event, topic="bench")

    async def handle(event: ExecutionRequested, ctx: MessageContext) -> None:
        return None

    runner = ConsumerRunner(
        settings=settings,
        group_id="bench",
        topics=["bench"],
        publisher=publisher,
        handlers=HandlerRegistry().on(ExecutionRequested, handle),
        tracer_provider=provider,
    )

    async def consume_all() -> None:
        for record in records:
            await runner._handle(record)

    async def archive(messages: Sequence[RawMessage]) -> None:
        return None

    batches = ConsumerRunner(
        settings=settings,
        group_id="bench-batch",
        topics=["bench"],
        publisher=publisher,
        batch_handler=archive,
        dead_letter_topic=None,
        tracer_provider=provider,
    )._batches
    assert batches is not None  # noqa: S101 - a batch handler was given

    async def batch_all() -> None:
        for i in range(0, n, batch):
            await batches.handle(records[i : i + batch])

    return (
        await _cpu_per_message(n, publish_all),
        await _cpu_per_message(n, consume_all),
        await _cpu_per_message(n, batch_all),
    )


def encoders(n: int) -> tuple[int, float, float]:
    """(spans, µs per span) of the SDK's encoder and ours, on the library's own spans."""
    from integr8scode_telemetry.span_encoding import SpanEncoder  # noqa: PLC0415

    spans = InMemorySpanExporter()
    handle = init_telemetry(
        TelemetrySettings(otlp_endpoint=None),
        "bench",
        "0",
        set_global=False,
        instrument_libraries=False,
    )
    handle.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    asyncio.run(measure(handle.tracer_provider, n, 500))
    finished = spans.get_finished_spans()
    encoder = SpanEncoder()

    def best(encode: Callable[[], object]) -> float:
        times = []
        for _ in range(5):
            start = time.process_time()
            encode()
            times.append(time.process_time() - start)
        return min(times) / len(finished) * 1e6

    sdk = best(lambda: encode_spans(finished).SerializeToString())
    ours = best(lambda: encoder.encode(finished))
    handle.shutdown()
    return len(finished), sdk, ours


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() and the young threshold after start-up, as the services do",
    )
    args = parser.parse_args()
    traced = init_telemetry(
        TelemetrySettings(otlp_endpoint=None),
        "bench",
        "0",
        set_global=False,
        instrument_libraries=False,
    ).tracer_provider
    variants = {"tracing off": trace.NoOpTracerProvider(), "tracing on, no export": traced}
    if args.gc_freeze:
        freeze_after_start_up()
    best: dict[str, tuple[float, ...]] = {}
    for _ in range(args.repeat):
        for name, provider in variants.items():
            figures = asyncio.run(measure(provider, args.messages, args.batch))
            previous = best.get(name, figures)
            best[name] = tuple(min(a, b) for a, b in zip(previous, figures, strict=True))
    print(f"CPU µs per message, best of {args.repeat}, {args.messages} messages{heap_note()}")
    print(f"{'variant':24} {'publish':>8} {'consume':>8} {'batch':>8}")
    for name, (publish, consume, batch) in best.items():
        print(f"{name:24} {publish:8.1f} {consume:8.1f} {batch:8.1f}")
    try:
        spans, sdk, ours = encoders(min(args.messages, 2048))
    except ImportError:  # a checkout from before issue 16 has no encoder of its own
        return
    print(
        f"OTLP encoding of {spans} of the library's spans, µs per span: "
        f"SDK {sdk:.1f}, ours {ours:.1f}"
    )


if __name__ == "__main__":
    main()
