"""The lean spans are the SDK's spans: the same operations through ``Tracer.start_span`` and
through ``integr8scode_spans.start_span`` give the same exported spans, field by field; the sampler
is asked the same questions and its answers are honoured; anything but the SDK's own tracer
takes the plain API path."""

from __future__ import annotations

import enum
import io
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    Tracer,
    TracerProvider,
    _disable_tracer_configurator,
)
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import Attributes

from integr8scode_spans import lean as lean_spans

Start = Callable[..., trace.Span]

REMOTE_SAMPLED = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "opaque")]),
)
REMOTE_UNSAMPLED = SpanContext(
    0x1AF7651916CD43DD8448EB211C80319C,
    0xC7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.DEFAULT),
)


class Counting(IdGenerator):
    """Ids in sequence, so the two paths give the same ones."""

    def __init__(self) -> None:
        self._next = 0

    def generate_span_id(self) -> int:
        self._next += 1
        return self._next

    def generate_trace_id(self) -> int:
        self._next += 1
        return self._next << 64

    def is_trace_id_random(self) -> bool:
        return False


class Level(enum.IntEnum):
    HIGH = 3


def _sdk(tracer: trace.Tracer, name: str, **kwargs: Any) -> trace.Span:
    return tracer.start_span(name, **kwargs)


def _lean(tracer: trace.Tracer, name: str, **kwargs: Any) -> trace.Span:
    return lean_spans.start_span(tracer, name, **kwargs)


class Pipeline:
    """A provider whose spans end in an in-memory exporter, with sequential ids."""

    def __init__(self, *, sampler: Sampler | None = None, limits: SpanLimits | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(
            sampler=sampler or ParentBased(ALWAYS_ON),
            resource=Resource.create({"service.name": "unit", "n": 3}),
            id_generator=Counting(),
            span_limits=limits,
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("integr8scode_events", "1.0", "https://schema/1")

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()


def _shape(span: ReadableSpan) -> dict[str, Any]:
    """Everything an exporter reads of a span, times left out (they are clocks)."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "context": (context.trace_id, context.span_id, context.trace_flags, context.trace_state),
        "parent": span.parent,
        "attributes": list((span.attributes or {}).items()),
        "dropped_attributes": span.dropped_attributes,
        "events": [
            (e.name, list((e.attributes or {}).items()), e.dropped_attributes) for e in span.events
        ],
        "dropped_events": span.dropped_events,
        "links": [
            (link.context, list((link.attributes or {}).items()), link.dropped_attributes)
            for link in span.links
        ],
        "dropped_links": span.dropped_links,
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource,
        "scope": span.instrumentation_scope,
        "timed": span.start_time is not None and span.end_time is not None,
    }


def _story(tracer: trace.Tracer, start: Start, *, raw: bytes | str = b"\x00\x01") -> None:
    """Every operation the library (or a handler holding its span) does on a span."""
    remote = trace.set_span_in_context(NonRecordingSpan(REMOTE_SAMPLED))
    consume = start(
        tracer,
        "kafka.consume",
        kind=SpanKind.CONSUMER,
        context=remote,
        attributes={
            "messaging.system": "kafka",
            "messaging.kafka.offset": 12,
            "ratio": 0.5,
            "flag": True,
            "raw": raw,
            "level": Level.HIGH,
            "tags": ["a", "b"],
            "": "empty key",
        },
        links=[
            Link(REMOTE_UNSAMPLED, {"integr8scode.link.reason": "x"}),
            Link(trace.INVALID_SPAN_CONTEXT),
        ],
        record_exception=False,
    )
    consume.set_attributes({"event.id": "e-1", "messaging.kafka.offset": 13})
    consume.set_attribute("messaging.handler.attempts", 2)
    consume.set_attribute("numbers", (1, 2, 3))
    consume.add_event("retry", {"attempt": 1, "delay_s": 0.2})
    consume.record_exception(ValueError("bad payload"), attributes={"attempt": 1})
    consume.add_link(REMOTE_SAMPLED, {"why": "later"})
    consume.update_name("kafka.consume renamed")
    with trace.use_span(consume, end_on_exit=False):
        child = start(
            tracer, "publish t", kind=SpanKind.PRODUCER, attributes={"messaging.system": "kafka"}
        )
        child.set_status(Status(StatusCode.ERROR, "broker refused"))
        child.end()
    consume.set_status(Status(StatusCode.OK))
    consume.end()
    consume.set_attribute("after", "end")  # refused: the span has ended
    consume.set_status(Status(StatusCode.ERROR, "too late"))
    root = start(tracer, "batch", kind=SpanKind.CONSUMER, context=Context(), attributes=None)
    root.end()


@pytest.mark.parametrize(
    "limits",
    [
        None,
        SpanLimits(
            max_span_attributes=4,
            max_span_attribute_length=3,
            max_events=1,
            max_links=1,
            max_event_attributes=1,
            max_link_attributes=1,
        ),
        SpanLimits(max_span_attributes=0, max_events=0, max_links=0),
    ],
    ids=["default limits", "small limits", "no room"],
)
def test_the_same_story_exports_the_same_spans(limits: SpanLimits | None) -> None:
    sdk, lean = Pipeline(limits=limits), Pipeline(limits=limits)
    _story(sdk.tracer, _sdk)
    _story(lean.tracer, _lean)
    assert [_shape(s) for s in lean.finished()] == [_shape(s) for s in sdk.finished()]
    assert len(lean.finished()) == 3
    assert all(isinstance(s, lean_spans.LeanSpan) for s in lean.finished())


def test_the_console_exporter_writes_the_same_json() -> None:
    outputs = []
    for start in (_sdk, _lean):
        out = io.StringIO()
        pipeline = Pipeline()
        pipeline.provider.add_span_processor(
            SimpleSpanProcessor(
                ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(None) + "\n")
            )
        )
        # Text, not bytes: the SDK's JSON can't hold bytes whichever span it is given.
        _story(pipeline.tracer, start, raw="raw")
        outputs.append(out.getvalue())
    sdk_json, lean_json = ([_untimed(line) for line in o.splitlines()] for o in outputs)
    assert lean_json == sdk_json
    assert '"messaging.kafka.offset": 13' in outputs[1]


def _untimed(line: str) -> str:
    import json  # noqa: PLC0415

    record = json.loads(line)
    record.pop("start_time")
    record.pop("end_time")
    for event in record["events"]:
        event.pop("timestamp")
    return json.dumps(record, sort_keys=True)


def test_a_lean_span_is_an_sdk_span_and_current_in_its_block() -> None:
    pipeline = Pipeline()
    with lean_spans.start_current_span(
        pipeline.tracer, "publish t", kind=SpanKind.PRODUCER, attributes={"a": "b"}
    ) as span:
        assert isinstance(span, SdkSpan)
        assert isinstance(span, trace.Span)
        assert trace.get_current_span() is span
        child = lean_spans.start_span(pipeline.tracer, "inner", kind=SpanKind.INTERNAL)
        child.end()
    assert trace.get_current_span() is not span
    inner, outer = pipeline.finished()
    assert inner.parent == outer.get_span_context()
    assert outer.parent is None


def test_an_escaping_exception_sets_error_but_records_no_event() -> None:
    pipeline = Pipeline()
    with (
        pytest.raises(KeyError),
        lean_spans.start_current_span(
            pipeline.tracer,
            "publish t",
            kind=SpanKind.PRODUCER,
            attributes={},
            record_exception=False,
        ),
    ):
        raise KeyError("gone")
    [span] = pipeline.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "KeyError: 'gone'"
    assert span.events == ()


class Recording(SpanProcessor):
    """What the provider's processors are told, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        self.calls.append(("start", span.name, parent_context))

    def _on_ending(self, span: SdkSpan) -> None:
        self.calls.append(("ending", span.name, span.is_recording()))

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append(("end", span.name, type(span).__name__))


@pytest.mark.parametrize("start", [_sdk, _lean], ids=["sdk", "lean"])
def test_processors_are_told_the_same(start: Start) -> None:
    pipeline = Pipeline()
    processor = Recording()
    pipeline.provider.add_span_processor(processor)
    parent = trace.set_span_in_context(NonRecordingSpan(REMOTE_SAMPLED))
    span = start(pipeline.tracer, "s", kind=SpanKind.CONSUMER, context=parent)
    span.end()
    span.end()  # a second end is a no-op
    names = [(kind, name, arg) for kind, name, arg in processor.calls if kind != "end"]
    assert names == [("start", "s", parent), ("ending", "s", False)]
    assert [c[0] for c in processor.calls] == ["start", "ending", "end"]
    assert len(pipeline.finished()) == 1


class AskedSampler(Sampler):
    """Records what it was asked and answers with ``decision`` (and an attribute of its own)."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.asked: list[tuple[Any, ...]] = []

    def should_sample(  # noqa: PLR0917 - the SDK's signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        linked = [(link.context, dict(link.attributes or {})) for link in links or ()]
        parent = trace.get_current_span(parent_context).get_span_context()
        self.asked.append((parent, trace_id, name, kind, dict(attributes or {}), linked))
        kept = {**(attributes or {}), "sampling.probability": 0.5}
        return SamplingResult(self.decision, kept, TraceState([("s", "1")]))

    def get_description(self) -> str:
        return "asked"


@pytest.mark.parametrize("decision", list(Decision), ids=[d.name for d in Decision])
def test_the_sampler_is_asked_the_same_and_obeyed(decision: Decision) -> None:
    asked, results = [], []
    for start in (_sdk, _lean):
        sampler = AskedSampler(decision)
        pipeline = Pipeline(sampler=sampler)
        links = [Link(REMOTE_UNSAMPLED)]
        context = trace.set_span_in_context(NonRecordingSpan(REMOTE_SAMPLED))
        span = start(
            pipeline.tracer,
            "s",
            kind=SpanKind.PRODUCER,
            context=context,
            attributes={"k": "v"},
            links=links,
        )
        span.end()
        asked.append(sampler.asked)
        results.append(
            (
                span.is_recording(),
                type(span) is NonRecordingSpan,
                span.get_span_context(),
                [_shape(s) for s in pipeline.finished()],
            )
        )
    assert asked[1] == asked[0]
    assert results[1] == results[0]
    exported = results[1][3]
    assert len(exported) == (1 if decision is Decision.RECORD_AND_SAMPLE else 0)
    if exported:
        assert ("sampling.probability", 0.5) in exported[0]["attributes"]


@pytest.mark.parametrize(
    ("sampler", "parent", "sampled"),
    [
        (ParentBased(TraceIdRatioBased(0.0)), None, False),
        (ParentBased(TraceIdRatioBased(1.0)), None, True),
        (ParentBased(TraceIdRatioBased(0.0)), REMOTE_SAMPLED, True),
        (ParentBased(TraceIdRatioBased(1.0)), REMOTE_UNSAMPLED, False),
        (ALWAYS_OFF, REMOTE_SAMPLED, False),
    ],
    ids=[
        "ratio 0 root",
        "ratio 1 root",
        "sampled parent over ratio 0",
        "unsampled parent over ratio 1",
        "off",
    ],
)
def test_ratio_off_and_parent_based_decisions_hold(
    sampler: Sampler, parent: SpanContext | None, sampled: bool
) -> None:
    pipeline = Pipeline(sampler=sampler)
    context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else Context()
    span = lean_spans.start_span(pipeline.tracer, "s", kind=SpanKind.CONSUMER, context=context)
    span.end()
    span_context = span.get_span_context()
    assert span_context.trace_flags.sampled is sampled
    assert span_context.is_valid
    if parent is not None:
        assert span_context.trace_id == parent.trace_id
        assert span_context.span_id != parent.span_id
    assert len(pipeline.finished()) == (1 if sampled else 0)
    # The decision travels: a child of this span follows it.
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        child = lean_spans.start_span(pipeline.tracer, "c", kind=SpanKind.PRODUCER)
    finally:
        otel_context.detach(token)
    assert child.get_span_context().trace_flags.sampled is sampled
    assert child.get_span_context().trace_id == span_context.trace_id


def test_random_ids_are_the_providers_and_never_zero() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("unit")
    contexts = [
        lean_spans.start_span(
            tracer, "s", kind=SpanKind.INTERNAL, context=Context()
        ).get_span_context()
        for _ in range(200)
    ]
    assert all(c.trace_id and c.span_id for c in contexts)
    assert len({c.span_id for c in contexts}) == 200
    assert len({c.trace_id for c in contexts}) == 200
    # The SDK's random generator marks its trace ids random (W3C level 2 flag).
    sdk_flags = tracer.start_span("s", context=Context()).get_span_context().trace_flags
    assert {c.trace_flags for c in contexts} == {sdk_flags}


class OwnTracer(Tracer):
    """A subclass may change start_span: it is called, never bypassed."""

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return NonRecordingSpan(REMOTE_UNSAMPLED)


def _tracers() -> Iterator[tuple[str, trace.Tracer]]:
    yield "no-op", trace.NoOpTracer()
    yield "proxy", trace.ProxyTracer("unit")
    sdk = Pipeline().tracer
    assert isinstance(sdk, Tracer)
    own = OwnTracer(
        sdk.sampler,
        sdk.resource,
        sdk.span_processor,
        sdk.id_generator,
        sdk.instrumentation_info,
        SpanLimits(),
        sdk._instrumentation_scope,
    )
    yield "sdk subclass", own


@pytest.mark.parametrize(("label", "tracer"), list(_tracers()), ids=lambda x: str(x)[:12])
def test_any_other_tracer_takes_the_plain_path(label: str, tracer: trace.Tracer) -> None:
    parent = trace.set_span_in_context(NonRecordingSpan(REMOTE_SAMPLED))
    span = lean_spans.start_span(tracer, "s", kind=SpanKind.PRODUCER, context=parent)
    assert not isinstance(span, lean_spans.LeanSpan), label
    expected = REMOTE_UNSAMPLED if isinstance(tracer, OwnTracer) else REMOTE_SAMPLED
    # The API's no-op tracers pass the parent on unchanged.
    assert span.get_span_context() == expected


def test_a_disabled_tracer_passes_the_parent_on() -> None:
    pipeline = Pipeline()
    pipeline.provider._set_tracer_configurator(tracer_configurator=_disable_tracer_configurator)
    parent = trace.set_span_in_context(NonRecordingSpan(REMOTE_SAMPLED))
    span = lean_spans.start_span(pipeline.tracer, "s", kind=SpanKind.PRODUCER, context=parent)
    assert not span.is_recording()
    assert span.get_span_context() == REMOTE_SAMPLED
    span.end()
    assert pipeline.finished() == ()


class SpanEventHandler(logging.Handler):
    """Turns a log record into an event on a span: a handler that touches a span while the
    span that logged may hold its lock."""

    def __init__(self, span: trace.Span) -> None:
        super().__init__(logging.WARNING)
        self.span = span

    def emit(self, record: logging.LogRecord) -> None:
        self.span.add_event("log", {"message": record.getMessage()})


def test_a_logging_handler_touching_a_span_does_not_deadlock() -> None:
    pipeline = Pipeline()
    logged = lean_spans.start_span(pipeline.tracer, "logs", kind=SpanKind.INTERNAL)
    span = lean_spans.start_span(pipeline.tracer, "s", kind=SpanKind.INTERNAL)
    handler = SpanEventHandler(logged)
    sdk_logger = logging.getLogger("opentelemetry.sdk.trace")
    sdk_logger.addHandler(handler)

    def work() -> None:
        # The SDK's set_status warns (a description with a Status) while it holds the lock.
        span.set_status(Status(StatusCode.ERROR, "x"), "ignored description")
        span.end()
        span.set_status(StatusCode.OK)  # ended: warns, under the lock too

    try:
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        worker.join(timeout=10)
    finally:
        sdk_logger.removeHandler(handler)
    assert not worker.is_alive(), "set_status deadlocked on the lean spans' lock"
    logged.end()
    events = {s.name: s.events for s in pipeline.finished()}
    assert [e.name for e in events["logs"]] == ["log", "log"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_gets_a_free_lock() -> None:
    tracer = TracerProvider().get_tracer("fork")
    lean_spans.start_span(tracer, "first", kind=SpanKind.INTERNAL).end()  # registers the hook
    lock = lean_spans.LeanSpan._lock
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # the child: another thread held the lock at the fork
            code = 0 if lean_spans.LeanSpan._lock.acquire(timeout=5) else 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        holder.join(10)
    assert os.waitstatus_to_exitcode(status) == 0


class Key(str):
    pass


@pytest.mark.parametrize(
    ("attributes", "max_len", "plain"),
    [
        ({"a": "x", "b": 1, "c": True, "d": 1.5, "e": b"y", "f": None}, None, True),
        ({}, None, True),
        ({"a": "xyz"}, 3, True),
        ({"a": "xyzw"}, 3, False),
        ({"a": 1, "b": "xyzw"}, 3, False),
        ({"": "x"}, None, False),
        ({Key("a"): "x"}, None, False),
        ({1: "x"}, None, False),
        ({"a": ["x"]}, None, False),
        ({"a": ("x",)}, None, False),
        ({"a": Level.HIGH}, None, False),
        ({"a": Key("x")}, None, False),
    ],
)
def test_plain_attributes_are_the_ones_the_sdk_keeps_as_they_are(
    attributes: dict[Any, Any], max_len: int | None, plain: bool
) -> None:
    assert lean_spans._plain(attributes, max_len) is plain
