"""The export child (``span_pipe.PipeSpanProcessor`` + ``export_child``): every span reaches the
collector as the SDK's encoder would send it, or is counted; flush and shutdown; a child that
dies; a fork; a parent that dies. A real child process, an in-process stand-in collector."""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import sys
import textwrap
import time
import weakref
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Link, Status, StatusCode
from tests.fake_collector import FakeCollector

from integr8scode_telemetry import TelemetrySettings, init_telemetry
from integr8scode_telemetry.span_export import span_processor
from integr8scode_telemetry.span_pipe import PipeSpanProcessor

DEADLINE_S = 30.0


def eventually(check: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.02)


class Colour(enum.StrEnum):
    RED = "red"


@pytest.fixture
def traced(
    collector: FakeCollector,
) -> Iterator[tuple[TracerProvider, PipeSpanProcessor, InMemorySpanExporter]]:
    """A provider exporting through the child to ``collector``, and the same spans in memory
    (to hold the child's requests to the SDK's encoding of them)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "pipe-unit"}))
    pipe = PipeSpanProcessor(
        collector.endpoint,
        max_queue_size=1000,
        max_export_batch_size=50,
        schedule_delay_millis=50,
        restart_backoff_s=0.05,
    )
    memory = InMemorySpanExporter()
    provider.add_span_processor(pipe)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider, pipe, memory
    provider.shutdown()


def _spans(provider: TracerProvider, count: int, prefix: str = "span") -> None:
    tracer = provider.get_tracer("integr8scode_events", "1.0")
    for i in range(count):
        with tracer.start_as_current_span(
            f"{prefix} {i % 3}", attributes={"i": i, "topic": "t", "ok": True}
        ):
            pass


def test_every_span_reaches_the_collector_as_the_sdk_encodes_it(
    traced: tuple[TracerProvider, PipeSpanProcessor, InMemorySpanExporter],
    collector: FakeCollector,
) -> None:
    provider, pipe, memory = traced
    tracer = provider.get_tracer("other")
    _spans(provider, 120)
    with tracer.start_as_current_span(
        "varied", attributes={"colour": Colour.RED, "names": ["a", "b"], "ratio": 0.5}
    ) as span:
        span.add_event("retry", {"attempt": 2})
        span.add_link(span.get_span_context(), {"reason": "self"})
        span.set_status(Status(StatusCode.ERROR, "broken"))
    tracer.start_span("linked", links=[Link(span.get_span_context())]).end()

    assert pipe.force_flush(int(DEADLINE_S * 1000))

    expected = encode_spans(memory.get_finished_spans())
    got = {span.span_id: span for span in collector.spans()}
    want = {
        span.span_id: span
        for resource in expected.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    assert got == want
    assert len(got) == 122
    stats = pipe.stats()
    assert (stats.queued, stats.exported, stats.waiting) == (122, 122, 0)
    assert (stats.dropped, stats.failed, stats.lost, stats.child_starts) == (0, 0, 0, 1)


def test_shutdown_exports_what_is_waiting_and_ends_the_child(collector: FakeCollector) -> None:
    provider = TracerProvider()
    # A delay far beyond the test: only the shutdown can send these.
    pipe = PipeSpanProcessor(
        collector.endpoint,
        max_queue_size=1000,
        max_export_batch_size=500,
        schedule_delay_millis=600_000,
    )
    provider.add_span_processor(pipe)
    _spans(provider, 30)
    eventually(lambda: pipe.child_pid is not None, "the child started")
    pid = pipe.child_pid
    assert collector.requests == []

    provider.shutdown()

    assert len(collector.spans()) == 30
    assert pipe.stats().exported == 30
    assert pipe.child_pid is None
    assert pid is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: the shutdown waited for it
    provider.get_tracer("late").start_span("after shutdown").end()
    assert pipe.stats().dropped == 1


def test_unsampled_spans_are_not_exported(collector: FakeCollector) -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    pipe = PipeSpanProcessor(
        collector.endpoint, max_queue_size=10, max_export_batch_size=5, schedule_delay_millis=50
    )
    provider.add_span_processor(pipe)
    _spans(provider, 20)

    provider.shutdown()

    assert pipe.stats().queued == 0
    assert pipe.child_pid is None  # no span, no child
    assert collector.requests == []


def test_a_full_queue_drops_and_counts(collector: FakeCollector) -> None:
    collector.hold()  # the child blocks in its first export; the pipe, then the queue, fill
    provider = TracerProvider()
    pipe = PipeSpanProcessor(
        collector.endpoint, max_queue_size=20, max_export_batch_size=10, schedule_delay_millis=10
    )
    provider.add_span_processor(pipe)
    tracer = provider.get_tracer("t")
    big = "x" * 2000
    sent = 0
    while pipe.stats().dropped == 0:
        with tracer.start_as_current_span("s", attributes={"pad": big}):
            sent += 1
        assert sent < 100_000, "the queue never overflowed"
    collector.release()

    provider.shutdown()

    stats = pipe.stats()
    assert stats.queued == sent
    assert stats.dropped > 0
    assert stats.exported == sent - stats.dropped == len(collector.spans())
    assert (stats.failed, stats.lost, stats.waiting) == (0, 0, 0)


def test_a_waiting_span_is_a_record_and_the_span_itself_is_not_kept(
    collector: FakeCollector,
) -> None:
    provider = TracerProvider()
    pipe = PipeSpanProcessor(
        collector.endpoint,
        max_queue_size=100,
        max_export_batch_size=100,
        schedule_delay_millis=60_000,  # nothing is sent before the flush below
    )
    provider.add_span_processor(pipe)
    span = provider.get_tracer("t").start_span("s", attributes={"k": "v"})
    span.end()
    ended = weakref.ref(span)
    del span

    assert ended() is None  # the processor keeps its record, not the span
    assert pipe.stats().waiting == 1
    assert pipe.force_flush()
    assert [s.name for s in collector.spans()] == ["s"]
    provider.shutdown()


def test_a_span_that_cannot_be_read_is_dropped_and_counted_not_raised(
    collector: FakeCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = TracerProvider()
    pipe = PipeSpanProcessor(
        collector.endpoint, max_queue_size=100, max_export_batch_size=100, schedule_delay_millis=10
    )
    provider.add_span_processor(pipe)
    records = pipe._spans
    readable = records.record

    def record(span: ReadableSpan) -> tuple[object, ...]:
        if span.name == "broken":
            raise AttributeError("a field this SDK no longer has")
        return readable(span)

    monkeypatch.setattr(records, "record", record)
    span = provider.get_tracer("t").start_span("broken")

    span.end()  # does not raise

    assert pipe.stats().dropped == 1
    with provider.get_tracer("t").start_as_current_span("fine"):
        pass
    assert pipe.force_flush()
    assert [s.name for s in collector.spans()] == ["fine"]
    provider.shutdown()


def test_a_refused_export_is_counted_failed(collector: FakeCollector) -> None:
    import grpc  # type: ignore[import-untyped]  # noqa: PLC0415

    collector.fail_with = grpc.StatusCode.INVALID_ARGUMENT  # not retried
    provider = TracerProvider()
    pipe = PipeSpanProcessor(
        collector.endpoint, max_queue_size=100, max_export_batch_size=10, schedule_delay_millis=20
    )
    provider.add_span_processor(pipe)
    _spans(provider, 25)

    assert pipe.force_flush(int(DEADLINE_S * 1000))
    provider.shutdown()

    stats = pipe.stats()
    assert (stats.failed, stats.exported, stats.waiting) == (25, 0, 0)


def test_a_child_that_dies_is_counted_and_replaced(
    traced: tuple[TracerProvider, PipeSpanProcessor, InMemorySpanExporter],
    collector: FakeCollector,
) -> None:
    provider, pipe, _ = traced
    collector.hold()
    _spans(provider, 10, "before")
    collector.waiting.wait(DEADLINE_S)  # the child holds spans it has not answered for
    first = pipe.child_pid
    assert first is not None

    os.kill(first, signal.SIGKILL)
    eventually(lambda: pipe.stats().lost > 0, "the dead child's spans counted lost")
    collector.release()
    _spans(provider, 7, "after")
    assert pipe.force_flush(int(DEADLINE_S * 1000))

    stats = pipe.stats()
    assert stats.child_starts == 2
    assert pipe.child_pid not in {None, first}
    assert stats.exported + stats.lost == stats.queued == 17
    assert stats.exported >= 7
    names = {span.name for span in collector.spans()}
    assert {"after 0", "after 1", "after 2"} <= names


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_exports_through_a_child_of_its_own(
    traced: tuple[TracerProvider, PipeSpanProcessor, InMemorySpanExporter],
    collector: FakeCollector,
) -> None:
    provider, pipe, _ = traced
    _spans(provider, 5, "parent")
    assert pipe.force_flush(int(DEADLINE_S * 1000))
    parent_child = pipe.child_pid

    pid = os.fork()
    if pid == 0:  # the forked process: its own export child, its own counts
        try:
            _spans(provider, 4, "forked")
            ok = pipe.force_flush(int(DEADLINE_S * 1000))
            stats = pipe.stats()
            good = ok and stats.exported == 4 and pipe.child_pid not in {None, parent_child}
            provider.shutdown()
        finally:
            os._exit(0 if good else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    _spans(provider, 3, "parent again")
    assert pipe.force_flush(int(DEADLINE_S * 1000))
    assert pipe.child_pid == parent_child  # the fork did not disturb this process's child
    names = [span.name for span in collector.spans()]
    assert sum(name.startswith("forked") for name in names) == 4
    assert sum(name.startswith("parent") for name in names) == 8
    assert pipe.stats().exported == 8


def test_the_child_ends_with_its_parent_even_when_a_fork_lives_on(
    collector: FakeCollector,
) -> None:
    """A parent killed without a shutdown: its export child sees its input end (a forked
    process of the parent holds no copy of the pipe), exports what it has, and exits."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time
        from opentelemetry.sdk.trace import TracerProvider
        from integr8scode_telemetry.span_pipe import PipeSpanProcessor
        provider = TracerProvider()
        pipe = PipeSpanProcessor({collector.endpoint!r}, max_queue_size=100,
                                 max_export_batch_size=10, schedule_delay_millis=20)
        provider.add_span_processor(pipe)
        for i in range(15):
            provider.get_tracer("t").start_span(f"orphan {{i}}").end()
        assert pipe.force_flush(30_000)
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        print(pipe.child_pid, flush=True)
        for i in range(5):
            provider.get_tracer("t").start_span(f"last {{i}}").end()
        time.sleep(0.5)  # the sender writes them to the child
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.wait(DEADLINE_S)

        def child_gone() -> bool:
            try:
                with open(f"/proc/{child}/stat") as stat:
                    return stat.read().rpartition(")")[2].split()[0] == "Z"
            except FileNotFoundError:
                return True

        eventually(child_gone, "the export child exited after its parent died")
        names = {span.name for span in collector.spans()}
        assert {f"orphan {i}" for i in range(15)} | {f"last {i}" for i in range(5)} == names
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the forked sleeper


def test_the_settings_choose_the_export_child() -> None:
    endpoint = "http://127.0.0.1:4317"
    settings = TelemetrySettings(otlp_endpoint=endpoint, bsp_max_queue_size=64)
    child = span_processor(settings)
    thread = span_processor(settings.model_copy(update={"span_export": "thread"}))
    sdk = span_processor(settings.model_copy(update={"span_encoder": "sdk"}))
    try:
        assert isinstance(child, PipeSpanProcessor)
        assert child._max_queue == 64
        assert not isinstance(thread, PipeSpanProcessor)
        assert not isinstance(sdk, PipeSpanProcessor)  # the SDK's encoder runs in-process
    finally:
        for processor in (child, thread, sdk):
            assert processor is not None
            processor.shutdown()
    assert span_processor(TelemetrySettings(otlp_endpoint=None)) is None
    assert span_processor(TelemetrySettings(otlp_endpoint=endpoint, sampler="off")) is None


def test_the_export_setting_reads_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTEGR8SCODE_SPAN_EXPORT", "thread")
    assert TelemetrySettings().span_export == "thread"
    monkeypatch.setenv("INTEGR8SCODE_SPAN_EXPORT", "elsewhere")
    with pytest.raises(ValueError, match=r"span_export|INTEGR8SCODE_SPAN_EXPORT"):
        TelemetrySettings()


def test_init_telemetry_exports_through_the_child_and_counts(collector: FakeCollector) -> None:
    handle = init_telemetry(
        TelemetrySettings(otlp_endpoint=collector.endpoint),
        "pipe-init",
        "0",
        set_global=False,
        instrument_libraries=False,
    )
    with handle.tracer.start_as_current_span("one"):
        pass
    handle.shutdown()

    stats = handle.span_export_stats()
    assert stats is not None
    assert (stats.queued, stats.exported) == (1, 1)
    [span] = collector.spans()
    assert span.name == "one"
