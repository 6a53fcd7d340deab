"""Span export off this process's GIL: a child process (``export_child.py``) encodes and
exports the spans this process ends.

With the batch span processor the export thread encoded every span (our encoder, ~8 µs a
span, plus the processor's own work and the gRPC call's Python side) while holding the GIL the
event loop needs. Here ``on_end`` makes the span a plain record (``span_records.py``, ~1.3 µs)
and appends it to a deque; a sender thread wakes once per batch (or after the schedule delay),
serialises the waiting records with one ``marshal.dumps`` (~0.9 µs a span) and writes them to
the child's pipe (the write releases the GIL); a reply thread reads the child's answers.

The record is made at once rather than by the sender (as it was): a span kept waiting for the
sender (up to a batch, or the schedule delay) is a handful of objects the garbage collector
tracks, promoted through its generations and scanned at every older collection until it goes,
while a record is a tuple of ints and strings the collector stops tracking at its first look
and the span dies with its last reference. In ``bench/events_throughput.py``'s traced round,
export cost the event loop ~33 µs a message over no export with the spans waiting, ~15 with
records waiting (docs/decisions.md, issue 16).

The child is started by the sender thread, which the first span starts (nothing at import or
construction); it is replaced when it dies, and ends when its pipe closes: at ``shutdown``
after exporting everything, or when this process dies.

Nothing is lost silently (``stats()``, and a log line for each kind of loss): a span that finds
``max_queue_size`` records waiting is dropped and counted (``dropped``), as are spans written
to a child that died before acknowledging them (``lost``) and spans the collector refused or
the exporter gave up on (``failed``, after the SDK exporter's retries).

Wire format. Parent to child, frames of ``FRAME_HEADER`` (kind, value) and a payload:
``SPANS`` (value: the payload's size; payload: ``marshal.dumps((definitions, records))``) and
``FLUSH`` (value: a sequence number; no payload). Child to parent, ``REPLY`` (kind, a, b):
``READY`` (a: its pid), ``ACK`` (a: spans exported, b: spans failed) per export request,
``FLUSHED`` (a: the sequence number of a flush, once everything before it was exported).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import marshal
import os
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from integr8scode_telemetry.span_records import (
    Definition,
    Record,
    SpanRecords,
    plain_definition,
    plain_record,
)

log = logging.getLogger(__name__)

FRAME_HEADER = struct.Struct("<cQ")
REPLY = struct.Struct("<cQQ")
SPANS = b"S"
FLUSH = b"F"
READY = b"R"
ACK = b"A"
FLUSHED = b"D"

# After a child failed to start or died, the next start waits at least this long (a child
# that can't run must not be restarted in a loop); spans meanwhile queue, then are dropped.
_RESTART_BACKOFF_S = 5.0
# A loss is logged when it happens, then at most this often while it goes on.
_LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class ExportStats:
    """What became of the sampled spans this processor was given (this process's share).

    ``queued`` spans were taken; ``exported`` the collector acknowledged; ``failed`` it refused
    or could not be reached for (after retries); ``dropped`` found the queue full or came after
    shutdown; ``lost`` were written to an export child that died before answering for them;
    ``waiting`` are still on their way (queued, in the pipe or being exported)."""

    queued: int
    exported: int
    failed: int
    dropped: int
    lost: int
    child_starts: int

    @property
    def waiting(self) -> int:
        return self.queued - self.dropped - self.exported - self.failed - self.lost


class _Child:
    """One export child: its process, our ends of its two pipes, what it was sent and what it
    answered for."""

    def __init__(self, process: subprocess.Popen[bytes], frames: int, replies: int) -> None:
        self.process = process
        self.frames = frames
        self.replies = replies
        self.sent = 0
        self.answered = 0
        self.ended = False  # its replies pipe reached its end
        self.reader: threading.Thread | None = None


class PipeSpanProcessor(SpanProcessor):
    """A batching span processor whose export runs in a child process; see the module
    docstring. ``max_queue_size``, ``max_export_batch_size`` and ``schedule_delay_millis`` mean
    what they mean for the SDK's ``BatchSpanProcessor`` (``OTEL_BSP_*``): the records waiting
    in this process at most, the spans per export request, and how long a partial batch waits.
    ``command`` starts the child (tests); a child that ended is replaced no sooner than
    ``restart_backoff_s`` after the last start."""

    def __init__(
        self,
        endpoint: str,
        *,
        max_queue_size: int,
        max_export_batch_size: int,
        schedule_delay_millis: float,
        command: list[str] | None = None,
        restart_backoff_s: float = _RESTART_BACKOFF_S,
    ) -> None:
        self._batch = max(1, min(max_export_batch_size, max_queue_size))
        self._max_queue = max_queue_size
        self._delay_s = schedule_delay_millis / 1000
        self._restart_backoff_s = restart_backoff_s
        self._command = command or [
            sys.executable,
            "-m",
            "integr8scode_telemetry.export_child",
            endpoint,
            str(self._batch),
        ]
        self._reset()
        # The fork hook holds the processor weakly: registering keeps it forever.
        reinit = weakref.WeakMethod(self._after_fork)

        def after_fork_in_child() -> None:
            if (method := reinit()) is not None:
                method()

        os.register_at_fork(after_in_child=after_fork_in_child)

    def _reset(self) -> None:
        self._ended: deque[Record] = deque()
        self._spans = SpanRecords()
        self._definitions: list[Definition] = []  # every one made, for a restarted child
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._sender: threading.Thread | None = None
        self._child: _Child | None = None
        self._next_start = 0.0
        self._shutdown = False
        self._queued = itertools.count()
        self._taken = 0
        self._exported = 0
        self._failed = 0
        self._dropped = 0
        self._lost = 0
        self._child_starts = 0
        self._flush_asked = 0
        self._flush_done = 0
        self._last_loss_log = -_LOG_EVERY_S
        self._flushed_ok = True
        self._killed = False

    def _after_fork(self) -> None:
        """In a forked child: the parent's queue, threads and export child are the parent's.
        Our copies of its pipe ends are closed (so its export child sees the end of its input
        when the parent goes, whatever this process does); a new export child starts with
        this process's first span."""
        child = self._child
        if child is not None:
            for fd in (child.frames, child.replies):
                with contextlib.suppress(OSError):
                    os.close(fd)
        shut = self._shutdown
        self._reset()
        self._shutdown = shut  # a processor shut down before the fork stays so

    # -- the span processor --------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        self._taken = next(self._queued) + 1
        spans = self._ended
        if self._shutdown or len(spans) >= self._max_queue:
            self._drop(1, "after shutdown" if self._shutdown else "queue full")
            return
        # Its record, made now: the span dies with its last reference (module docstring).
        try:
            spans.append(self._spans.record(span))
        except Exception as exc:  # noqa: BLE001 - counted and logged, never raised into end()
            self._drop(1, f"unreadable span: {exc!r}")  # a span the records can't read
            return
        if self._sender is None:
            self._start_sender()
        if len(spans) >= self._batch and not self._wake.is_set():
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every span ended so far; False when that did not finish within the
        timeout (or no export child could run)."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._lock:
            if self._sender is None or self._shutdown:
                return not self._ended
            self._flush_asked += 1
            asked = self._flush_asked
            self._wake.set()
            while self._flush_done < asked:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return self._flushed_ok

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Export what is waiting, close the child's input and wait for it to finish (killed
        past the timeout). Spans ended afterwards are counted as dropped."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            sender = self._sender
        self._wake.set()
        if sender is not None:
            sender.join(timeout_millis / 1000)
            if sender.is_alive():
                child = self._child
                self._killed = True  # no new child in its place
                if child is not None:
                    log.error("span export: the export child did not finish in time; killed")
                    child.process.kill()
                sender.join(5)

    def stats(self) -> ExportStats:
        """Counts of what became of the spans so far (``ExportStats``)."""
        with self._lock:
            return ExportStats(
                queued=self._taken,
                exported=self._exported,
                failed=self._failed,
                dropped=self._dropped,
                lost=self._lost,
                child_starts=self._child_starts,
            )

    @property
    def child_pid(self) -> int | None:
        """The running export child's pid (None before the first span and after shutdown)."""
        child = self._child
        return child.process.pid if child is not None and not child.ended else None

    # -- losses ------------------------------------------------------------------------------

    def _drop(self, count: int, reason: str) -> None:
        with self._lock:
            self._dropped += count
            total = self._dropped
        self._log_loss(f"{count} span(s) dropped ({reason}; {total} dropped so far)")

    def _log_loss(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_loss_log >= _LOG_EVERY_S:
            self._last_loss_log = now
            log.warning("span export: %s", message)

    # -- the sender thread ---------------------------------------------------------------------

    def _start_sender(self) -> None:
        with self._lock:
            if self._sender is not None or self._shutdown:
                return
            self._sender = threading.Thread(
                target=self._send_loop, name="integr8scode-span-sender", daemon=True
            )
            self._sender.start()

    def _send_loop(self) -> None:
        self._running_child()  # started now: its interpreter loads while the first batch fills
        while True:
            self._wake.wait(self._delay_s)
            self._wake.clear()
            with self._lock:
                flush = self._flush_asked
                stopping = self._shutdown
            self._reap_if_ended()
            if self._ended:
                self._send_waiting()
            if flush > self._flush_done:
                self._send_flush(flush)
            if stopping:
                if self._ended:  # no export child could run
                    self._drop(len(self._ended), "no export child at shutdown")
                    self._ended.clear()
                self._close_child()
                return

    def _send_waiting(self) -> None:
        child = self._running_child()
        if child is None:
            return  # kept waiting (past the queue's size new spans are dropped) until one runs
        ended = self._ended
        # Records first, then definitions: a definition is queued before any record naming it.
        batch = [ended.popleft() for _ in range(len(ended))]
        definitions = self._spans.definitions
        new = [definitions.popleft() for _ in range(len(definitions))]
        self._definitions.extend(new)
        if child.sent == 0:
            new = list(self._definitions)  # a new child knows none of them
        try:
            payload = marshal.dumps((new, batch))
        except ValueError:  # an attribute value of a subclass of a built-in type
            payload = marshal.dumps(
                ([plain_definition(d) for d in new], [plain_record(r) for r in batch])
            )
        with self._lock:
            child.sent += len(batch)
        self._write(child, FRAME_HEADER.pack(SPANS, len(payload)), payload)

    def _send_flush(self, asked: int) -> None:
        child = self._child
        if child is None or child.ended:
            self._flush_finished(asked, ok=False)
            return
        self._write(child, FRAME_HEADER.pack(FLUSH, asked), b"")

    def _write(self, child: _Child, header: bytes, payload: bytes) -> None:
        view = memoryview(header + payload) if len(payload) < 65_536 else None
        try:
            if view is None:
                _write_all(child.frames, memoryview(header))
                _write_all(child.frames, memoryview(payload))
            else:
                _write_all(child.frames, view)
        except OSError:  # BrokenPipeError: the child is gone
            self._reap(child)

    def _flush_finished(self, asked: int, *, ok: bool) -> None:
        with self._lock:
            self._flush_done = max(self._flush_done, asked)
            self._flushed_ok = ok
            self._changed.notify_all()

    # -- the child -----------------------------------------------------------------------------

    def _running_child(self) -> _Child | None:
        child = self._child
        if child is not None and not child.ended:
            return child
        if self._killed or time.monotonic() < self._next_start:
            return None
        self._next_start = time.monotonic() + self._restart_backoff_s
        frames_read, frames_write = os.pipe()
        replies_read, replies_write = os.pipe()
        try:
            process = subprocess.Popen(  # noqa: S603 - our own module, by this interpreter
                self._command, stdin=frames_read, stdout=replies_write, close_fds=True
            )
        except OSError:
            log.exception("span export: the export child could not be started")
            for fd in (frames_read, frames_write, replies_read, replies_write):
                os.close(fd)
            return None
        os.close(frames_read)
        os.close(replies_write)
        child = _Child(process, frames_write, replies_read)
        child.reader = threading.Thread(
            target=self._read_replies, args=(child,), name="integr8scode-span-replies", daemon=True
        )
        child.reader.start()
        with self._lock:
            self._child = child
            self._child_starts += 1
        return child

    def _read_replies(self, child: _Child) -> None:
        buffer = bytearray()
        while chunk := _read(child.replies):
            buffer += chunk
            while len(buffer) >= REPLY.size:
                kind, first, second = REPLY.unpack_from(buffer)
                del buffer[: REPLY.size]
                if kind == ACK:
                    with self._lock:
                        child.answered += first + second
                        self._exported += first
                        self._failed += second
                        failed = self._failed
                    if second:
                        self._log_loss(f"{second} span(s) failed to export ({failed} so far)")
                elif kind == FLUSHED:
                    self._flush_finished(first, ok=True)
        with self._lock:
            child.ended = True
            self._changed.notify_all()
        self._wake.set()  # the sender reaps it and counts what it took with it

    def _reap_if_ended(self) -> None:
        child = self._child
        if child is not None and child.ended:
            self._reap(child)

    def _reap(self, child: _Child) -> None:
        """A child that died or whose pipe broke: wait for it, count what it took with it,
        close our pipe ends, answer waiting flushes."""
        if child.reader is not None:
            child.reader.join(5)
        status = child.process.wait()
        for fd in (child.frames, child.replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        with self._lock:
            lost = child.sent - child.answered
            self._lost += lost
            if self._child is child:
                self._child = None
            asked = self._flush_asked
        if lost or not self._shutdown:
            log.error(
                "span export: the export child (pid %d) ended with status %s; %d span(s) it "
                "had not answered for are lost",
                child.process.pid,
                status,
                lost,
            )
        if asked > self._flush_done:
            self._flush_finished(asked, ok=False)

    def _close_child(self) -> None:
        """At shutdown: the child's input ends, it exports what it has and exits."""
        child = self._child
        if child is None:
            return
        with contextlib.suppress(OSError):
            os.close(child.frames)
        child.frames = -1
        if child.reader is not None:
            child.reader.join()
        status = child.process.wait()
        with contextlib.suppress(OSError):
            os.close(child.replies)
        with self._lock:
            lost = child.sent - child.answered
            self._lost += lost
            self._child = None
            self._changed.notify_all()
        if lost or status:
            log.error(
                "span export: the export child ended with status %s; %d span(s) lost",
                status,
                lost,
            )


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 12)
    except OSError:
        return b""


__all__ = ["ExportStats", "PipeSpanProcessor"]
