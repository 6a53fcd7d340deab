"""CPU per Mongo command in the client, with and without command spans (issue 13).

    uv run --no-sync python bench/mongo_spans_cpu.py [--ops 3000] [--rounds 3]

One process runs ``update_one`` on one document of a scratch database, one command after the
other, against the stack's Mongo-wire server, and prints this process's CPU time per command
(``time.process_time``: the client's side only, the server's CPU is not in it) for:

- ``none``: no command listener;
- ``listener``: a listener that does nothing (what PyMongo's monitoring costs by itself);
- ``spans``: ``init_telemetry`` as a service runs it (``MongoCommandSpans``, the export child),
  with each command's span sent to the collector;
- ``spans, parent``: the same, each command inside a parent span (as in a service, where a
  command is never a root).

Each mode runs in a fresh interpreter (PyMongo's listeners can't be removed), the modes
interleaved ``--rounds`` times; the best round of each is printed, and the difference to
``none``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid

MODES = ("none", "listener", "spans", "spans, parent")
MONGO_URL = os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017")
OTLP = f"http://127.0.0.1:{os.environ.get('OTLP_GRPC_PORT', '4317')}"


async def _measure(mode: str, ops: int) -> float:
    from opentelemetry import trace  # noqa: PLC0415
    from pymongo import AsyncMongoClient, monitoring  # noqa: PLC0415

    if mode == "listener":

        class Nothing(monitoring.CommandListener):
            def started(self, event: monitoring.CommandStartedEvent) -> None:
                pass

            def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
                pass

            def failed(self, event: monitoring.CommandFailedEvent) -> None:
                pass

        monitoring.register(Nothing())
    elif mode.startswith("spans"):
        from integr8scode_telemetry import TelemetrySettings  # noqa: PLC0415
        from integr8scode_telemetry.setup import init_telemetry  # noqa: PLC0415

        init_telemetry(TelemetrySettings(otlp_endpoint=OTLP), "bench-mongo-spans", "0")
    tracer = trace.get_tracer("bench")
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGO_URL)
    collection = client[f"bench_spans_{uuid.uuid4().hex[:8]}"]["docs"]
    try:
        await collection.insert_one({"_id": 1, "n": 0})
        for i in range(ops // 10):  # warm-up
            await collection.update_one({"_id": 1}, {"$set": {"n": i}})
        start = time.process_time()
        for i in range(ops):
            if mode == "spans, parent":
                with tracer.start_as_current_span("parent"):
                    await collection.update_one({"_id": 1}, {"$set": {"n": i}})
            else:
                await collection.update_one({"_id": 1}, {"$set": {"n": i}})
        return (time.process_time() - start) / ops
    finally:
        await client.drop_database(collection.database.name)
        await client.close()


def _child(mode: str, ops: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--ops", str(ops)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(asyncio.run(_measure(args.child, args.ops)))
        return
    best = {mode: float("inf") for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            best[mode] = min(best[mode], _child(mode, args.ops))
    print(f"client CPU per update_one, best of {args.rounds} rounds of {args.ops}:")
    for mode in MODES:
        extra = (best[mode] - best["none"]) * 1e6
        print(f"  {mode:16} {best[mode] * 1e6:7.1f} µs   {extra:+7.1f} µs against none")


if __name__ == "__main__":
    main()
