"""The export child: encodes the span records its parent sends over a pipe and exports them to
the OTLP gRPC endpoint, in a process (and so a GIL) of its own.

    python -m integr8scode_telemetry.export_child <endpoint> <max_export_batch_size>

Started by ``span_pipe.PipeSpanProcessor`` (never by hand); the wire format is in
``span_pipe.py``. It exits when its standard input ends (the parent shut the pipe, or died: the
kernel closes a dead process's descriptors) after exporting what it received, or when its
parent process is gone. SIGINT and SIGTERM are ignored: a terminal's Ctrl-C or a process
group's SIGTERM reaches the parent too, which flushes through this child before it closes the
pipe. Export errors are retried as the SDK's exporter retries them, then reported to the parent
as failed spans; nothing is dropped without being counted there.
"""

from __future__ import annotations

import logging
import marshal
import os
import select
import signal
import sys
from typing import Any

from integr8scode_telemetry import span_pipe as wire
from integr8scode_telemetry.span_encoding import SpanEncoder

log = logging.getLogger("integr8scode_telemetry.export_child")

# How often the child checks that its parent still exists while no frame arrives.
_PARENT_CHECK_S = 1.0


class _Reader:
    """Frames from standard input, with the parent watched while none arrives."""

    def __init__(self, fd: int, parent: int) -> None:
        self._fd = fd
        self._parent = parent
        self._buffer = bytearray()

    def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            ready, _, _ = select.select([self._fd], [], [], _PARENT_CHECK_S)
            if not ready:
                if os.getppid() != self._parent:
                    return False  # orphaned (and some other process holds the pipe open)
                continue
            chunk = os.read(self._fd, max(1 << 16, size - len(self._buffer)))
            if not chunk:
                return False
            self._buffer += chunk
        return True

    def frame(self) -> tuple[bytes, int, bytes] | None:
        """The next ``(kind, value, payload)``; None at the end of the input."""
        if not self._fill(wire.FRAME_HEADER.size):
            return None
        kind, value = wire.FRAME_HEADER.unpack_from(self._buffer)
        size = value if kind == wire.SPANS else 0
        if not self._fill(wire.FRAME_HEADER.size + size):
            return None
        payload = bytes(self._buffer[wire.FRAME_HEADER.size : wire.FRAME_HEADER.size + size])
        del self._buffer[: wire.FRAME_HEADER.size + size]
        return kind, value, payload


class _ReadyBytes:
    """An encoded request and how many spans it holds (the exporter's metrics count them)."""

    __slots__ = ("count", "payload")

    def __init__(self, payload: bytes, count: int) -> None:
        self.payload = payload
        self.count = count


def _exporter(endpoint: str) -> Any:
    # Imported here: gRPC is loaded by the child only.
    from integr8scode_telemetry.otlp_grpc import BytesOTLPSpanExporter  # noqa: PLC0415

    class ReadyBytesExporter(BytesOTLPSpanExporter):
        """The SDK's gRPC exporter (retries, reconnects) sending requests encoded already."""

        def _translate_data(self, data: Any) -> bytes:  # type: ignore[override]
            payload: bytes = data.payload
            return payload

        def _count_data(self, data: Any) -> int:
            count: int = data.count
            return count

    return ReadyBytesExporter(endpoint=endpoint, insecure=True)


def _write(fd: int, kind: bytes, first: int, second: int) -> None:
    data = wire.REPLY.pack(kind, first, second)
    while data:
        data = data[os.write(fd, data) :]


def serve(endpoint: str, batch_size: int, stdin: int, stdout: int, parent: int) -> None:
    """Read frames until the input ends; export each frame's spans in requests of at most
    ``batch_size``; answer every request with its outcome and every flush when done."""
    from opentelemetry.sdk.trace.export import SpanExportResult  # noqa: PLC0415

    exporter = _exporter(endpoint)
    encoder = SpanEncoder()
    reader = _Reader(stdin, parent)
    _write(stdout, wire.READY, os.getpid(), 0)
    try:
        while (frame := reader.frame()) is not None:
            kind, value, payload = frame
            if kind == wire.FLUSH:
                _write(stdout, wire.FLUSHED, value, 0)
                continue
            # From our parent over a pipe only it holds: the records it wrote.
            definitions, records = marshal.loads(payload)  # noqa: S302
            encoder.define(definitions)
            for start in range(0, len(records), batch_size):
                batch = records[start : start + batch_size]
                try:
                    request = encoder.encode_records(batch)
                except (TypeError, ValueError, KeyError, OverflowError):
                    log.exception("span export child: %d spans could not be encoded", len(batch))
                    _write(stdout, wire.ACK, 0, len(batch))
                    continue
                result = exporter.export(_ReadyBytes(request, len(batch)))
                if result is SpanExportResult.SUCCESS:
                    _write(stdout, wire.ACK, len(batch), 0)
                else:
                    _write(stdout, wire.ACK, 0, len(batch))
    finally:
        exporter.shutdown()


def main(argv: list[str]) -> int:
    """The child's entry point; its arguments are the endpoint and the batch size."""
    # Before anything slow: a signal to the whole group must not end the child first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if len(argv) != 2:
        log.error("usage: export_child <endpoint> <max_export_batch_size>")
        return 2
    endpoint, batch_size = argv[0], int(argv[1])
    # Replies get a descriptor of their own; anything a library prints goes to stderr.
    replies = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        serve(endpoint, batch_size, sys.stdin.fileno(), replies, parent)
    except BrokenPipeError:
        return 1  # the parent stopped reading: it is gone
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
