"""Phases, notifications and the critical path derived from hand-built traces shaped like the
trace contract (DESIGN.md §5): what a finished execution's trace holds, and what is reported
missing when part of it is not there."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from integr8scode_api.domain.critical_path import critical_path
from integr8scode_api.domain.timeline import PHASES, Timeline, derive_timeline
from integr8scode_api.domain.trace import AttributeValue, TraceSpan

EXEC = "e-1"
TRACE = "0af7651916cd43dd8448eb211c80319c"
API, COORD, NOTIFIER, DLQ, REPLAY = (
    "integr8scode-backend",
    "execution-coordinator",
    "notifier",
    "dlq-processor",
    "event-replay",
)
T0_US = 1_700_000_000_000_000


@dataclass
class Recorder:
    """Builds spans with offsets in milliseconds from the trace's start."""

    spans: list[TraceSpan] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def add(
        self,
        name: str,
        service: str,
        start_ms: float,
        duration_ms: float,
        parent: TraceSpan | None = None,
        *,
        kind: str = "internal",
        error: bool = False,
        attributes: dict[str, AttributeValue] | None = None,
        **attrs: AttributeValue,
    ) -> TraceSpan:
        span = TraceSpan(
            span_id=f"{next(self._ids):016x}",
            parent_id=parent.span_id if parent else None,
            service=service,
            name=name,
            start_us=T0_US + int(start_ms * 1000),
            duration_us=int(duration_ms * 1000),
            kind=kind,
            error=error,
            attributes={k.replace("__", "."): v for k, v in attrs.items()} | (attributes or {}),
        )
        self.spans.append(span)
        return span


def finished_execution(rec: Recorder, *, webhook: bool = False) -> dict[str, TraceSpan]:
    """The spans of one execution from POST to the status the api applied (times in ms)."""
    s: dict[str, TraceSpan] = {}
    s["root"] = root = rec.add(
        "POST /api/v1/execute", API, 0, 20, kind="server", execution__id=EXEC
    )
    s["rate"] = rec.add("rate_limit.check", API, 1, 1, root, rate_limit__allowed=True)
    s["store"] = rec.add("insert executions", API, 3, 2, root, kind="client")
    s["publish"] = pub = rec.add(
        "publish execution_requests",
        API,
        6,
        10,
        root,
        kind="producer",
        event__type="execution.requested",
        execution__id=EXEC,
    )
    rec.add("event_store.archive", REPLAY, 12, 3, pub, kind="consumer")
    s["consume"] = consume = rec.add(
        "kafka.consume",
        COORD,
        18,
        6,
        pub,
        kind="consumer",
        event__type="execution.requested",
        execution__id=EXEC,
    )
    s["queue"] = rec.add("saga.queue_wait", COORD, 18, 4, consume, execution__id=EXEC)
    s["admit"] = rec.add("saga.admit", COORD, 22, 8, consume, execution__id=EXEC)
    s["saga"] = saga = rec.add(
        "saga.execution", COORD, 30, 100, consume, execution__id=EXEC, saga__queue_wait_ms=12.5
    )
    step = rec.add("saga.step", COORD, 30, 60, saga, saga__step="run", execution__id=EXEC)
    s["sandbox"] = rec.add(
        "sandbox.run", COORD, 35, 50, step, execution__id=EXEC, sandbox__exit_code=0
    )
    s["stored"] = rec.add("saga.step", COORD, 92, 5, saga, saga__step="store_result")
    s["done"] = done = rec.add(
        "publish execution_events",
        COORD,
        100,
        5,
        saga,
        kind="producer",
        event__type="execution.completed",
        execution__id=EXEC,
    )
    s["delivered"] = rec.add(
        "kafka.consume",
        API,
        110,
        8,
        done,
        kind="consumer",
        event__type="execution.completed",
        execution__id=EXEC,
    )
    s["notifier"] = rec.add(
        "kafka.consume",
        NOTIFIER,
        108,
        30 if webhook else 2,
        done,
        kind="consumer",
        event__type="execution.completed",
        event__id="ev-done",
        execution__id=EXEC,
        messaging__dead_lettered=webhook,  # the failing webhook's handling is dead-lettered
    )
    return s


def names(timeline: Timeline) -> list[str]:
    return [p.name for p in timeline.phases]


def test_a_finished_execution_has_every_phase_in_order_and_is_complete() -> None:
    rec = Recorder()
    s = finished_execution(rec)
    timeline = derive_timeline(EXEC, TRACE, rec.spans, terminal=True, jaeger="http://j/t")

    assert timeline.complete, timeline.missing
    assert timeline.missing == []
    assert names(timeline) == list(PHASES)
    starts = [p.start_ms for p in timeline.phases]
    assert starts == sorted(starts)
    by_name = {p.name: p for p in timeline.phases}
    # accepted: the request until the publish started, with the rate limit and the store in it
    assert (by_name["accepted"].start_ms, by_name["accepted"].duration_ms) == (0, 6)
    assert [p.name for p in by_name["accepted"].parts] == ["rate_limit", "store"]
    assert (by_name["publish"].start_ms, by_name["publish"].duration_ms) == (6, 10)
    # queue wait: broker ack (16) to the saga's start (30); the hop is publish → consume start
    wait = by_name["queue_wait"]
    assert (wait.start_ms, wait.duration_ms) == (16, 14)
    assert wait.details == {"kafka_hop_ms": 12, "admission_ms": 8, "queue_wait_ms": 12.5}
    assert [p.name for p in wait.parts] == ["kafka", "queue", "admission"]
    sandbox = by_name["sandbox"]
    assert (sandbox.start_ms, sandbox.duration_ms, sandbox.span_ids) == (
        35,
        50,
        [s["sandbox"].span_id],
    )
    assert [p.name for p in sandbox.parts] == ["run"]
    assert sandbox.details["exit_code"] == 0
    assert by_name["result_stored"].span_ids == [s["stored"].span_id]
    assert by_name["status_delivered"].span_ids == [s["delivered"].span_id]
    assert timeline.result_ms == 118
    assert timeline.total_ms == 130  # the saga's end: the last span of this trace
    assert timeline.links.jaeger == "http://j/t"
    assert len(timeline.spans) == len(rec.spans)


def test_compile_and_spawn_spans_become_parts_of_the_sandbox_phase() -> None:
    rec = Recorder()
    s = finished_execution(rec)
    rec.add("sandbox.spawn", COORD, 35, 2, s["sandbox"])
    rec.add("sandbox.compile", COORD, 37, 20, s["sandbox"])
    rec.add("sandbox.execute", COORD, 57, 25, s["sandbox"])
    timeline = derive_timeline(EXEC, TRACE, rec.spans, terminal=True, jaeger=None)
    sandbox = next(p for p in timeline.phases if p.name == "sandbox")
    assert [(p.name, p.start_ms, p.duration_ms) for p in sandbox.parts] == [
        ("spawn", 35, 2),
        ("compile", 37, 20),
        ("execute", 57, 25),
    ]


def test_a_trace_with_only_the_api_part_is_incomplete_and_says_what_is_missing() -> None:
    rec = Recorder()
    s = finished_execution(rec)
    api_only = [sp for sp in rec.spans if sp.service == API and sp is not s["delivered"]]
    timeline = derive_timeline(EXEC, TRACE, api_only, terminal=True, jaeger=None)
    assert not timeline.complete
    assert names(timeline) == ["accepted", "publish"]
    assert timeline.missing == [
        "queue_wait",
        "sandbox",
        "result_stored",
        "status_delivered",
        "notifications",
    ]
    assert timeline.result_ms is None
    assert timeline.reason is not None
    assert "queue_wait" in timeline.reason


def test_a_running_execution_is_not_complete_even_with_its_phases_so_far() -> None:
    rec = Recorder()
    finished_execution(rec)
    timeline = derive_timeline(EXEC, TRACE, rec.spans, terminal=False, jaeger=None)
    assert not timeline.complete
    assert timeline.reason is not None
    assert "not finished" in timeline.reason


def test_an_execution_cancelled_in_the_queue_waits_for_no_sandbox() -> None:
    rec = Recorder()
    s = finished_execution(rec)
    never_ran = [
        sp for sp in rec.spans if sp.name not in {"sandbox.run", "saga.step"} or sp is s["saga"]
    ]
    timeline = derive_timeline(EXEC, TRACE, never_ran, terminal=True, jaeger=None, ran=False)
    assert timeline.complete, timeline.missing
    assert names(timeline) == ["accepted", "publish", "queue_wait", "status_delivered"]
    # The same trace of an execution that did run is missing its sandbox.
    ran = derive_timeline(EXEC, TRACE, never_ran, terminal=True, jaeger=None)
    assert ran.missing == ["sandbox", "result_stored"]


def test_another_executions_spans_in_the_same_trace_are_not_taken() -> None:
    rec = Recorder()
    s = finished_execution(rec)
    # A batch request: the other execution's sandbox ran first.
    rec.add("sandbox.run", COORD, 32, 1, s["saga"], execution__id="e-2")
    timeline = derive_timeline(EXEC, TRACE, rec.spans, terminal=True, jaeger=None)
    sandbox = next(p for p in timeline.phases if p.name == "sandbox")
    assert sandbox.span_ids == [s["sandbox"].span_id]


def add_failing_webhook(rec: Recorder, s: dict[str, TraceSpan], *, retried: bool) -> None:
    """A webhook that fails, is dead-lettered, and (``retried``) retried after its backoff."""
    nid = "n-1"
    common: dict[str, AttributeValue] = {
        "notification.id": nid,
        "notification.channel": "webhook",
        "event.id": "ev-done",
        "execution.id": EXEC,
    }
    first = rec.add(
        "notification.deliver",
        NOTIFIER,
        110,
        25,
        s["notifier"],
        error=True,
        attributes={**common, "notification.status": "failed", "notification.attempts": 2},
    )
    rec.add("POST", NOTIFIER, 112, 3, first, kind="client", http__request__method="POST")
    rec.add("POST", NOTIFIER, 125, 3, first, kind="client", http__request__method="POST")
    rec.add("publish dead_letter_queue", NOTIFIER, 136, 1, s["notifier"], kind="producer")
    rec.add(
        "dlq.consume",
        DLQ,
        140,
        5,
        s["done"],
        kind="consumer",
        event__id="ev-done",
        dlq__original__consumer_group="notifier",
        dlq__status="scheduled",
        dlq__retry_count=0,
    )
    if not retried:
        return
    retry = rec.add(
        "dlq.retry",
        DLQ,
        1145,
        4,
        s["done"],
        event__id="ev-done",
        dlq__retry_count=1,
        messaging__consumer__group__name="notifier",
    )
    republish = rec.add("publish execution_events", DLQ, 1147, 2, retry, kind="producer")
    again = rec.add(
        "kafka.consume",
        NOTIFIER,
        1150,
        20,
        republish,
        kind="consumer",
        event__type="execution.completed",
        event__id="ev-done",
    )
    second = rec.add(
        "notification.deliver",
        NOTIFIER,
        1152,
        15,
        again,
        attributes={**common, "notification.status": "delivered", "notification.attempts": 3},
    )
    rec.add("POST", NOTIFIER, 1155, 10, second, kind="client", http__request__method="POST")


def test_a_notification_shows_its_deliveries_attempts_and_dlq_retry_with_backoff() -> None:
    rec = Recorder()
    s = finished_execution(rec, webhook=True)
    add_failing_webhook(rec, s, retried=True)
    timeline = derive_timeline(EXEC, TRACE, rec.spans, terminal=True, jaeger=None)

    assert timeline.complete, timeline.missing
    [note] = timeline.notifications
    assert (note.notification_id, note.channel, note.status, note.attempts) == (
        "n-1",
        "webhook",
        "delivered",
        3,
    )
    assert [(d.start_ms, d.status, d.http_attempts) for d in note.deliveries] == [
        (110, "failed", 2),
        (1152, "delivered", 1),
    ]
    [retry] = note.retries
    # scheduled when the dead letter's intake ended (145), re-published at 1145
    assert (retry.retry, retry.scheduled_ms, retry.published_ms, retry.backoff_ms) == (
        1,
        145,
        1145,
        1000,
    )
    assert (note.start_ms, note.duration_ms) == (110, 1057)
    assert timeline.total_ms == 1170
    # The end-to-end time is the notification's: the chain runs through the retry.
    critical = {seg.span_id for seg in timeline.critical_path}
    retry_span = next(sp for sp in rec.spans if sp.name == "dlq.retry")
    assert retry_span.span_id in critical
    waits = [seg for seg in timeline.critical_path if seg.waiting]
    assert sum(w.duration_ms for w in waits) >= 1000  # the backoff is time spent waiting


def test_a_scheduled_retry_not_yet_in_the_trace_makes_it_incomplete() -> None:
    rec = Recorder()
    s = finished_execution(rec, webhook=True)
    add_failing_webhook(rec, s, retried=False)
    timeline = derive_timeline(EXEC, TRACE, rec.spans, terminal=True, jaeger=None)
    assert not timeline.complete
    assert timeline.missing == ["notification n-1: a retry is scheduled"]


def test_each_step_of_the_dead_letter_story_not_yet_exported_is_reported() -> None:
    rec = Recorder()
    s = finished_execution(rec, webhook=True)
    add_failing_webhook(rec, s, retried=True)
    cases = {
        "dlq.consume": "a dead letter not yet taken in by the dlq-processor",
        "dlq.retry": "a retry is scheduled",
    }
    for dropped, words in cases.items():
        spans = [sp for sp in rec.spans if sp.name != dropped]
        timeline = derive_timeline(EXEC, TRACE, spans, terminal=True, jaeger=None)
        assert timeline.missing == [f"notification n-1: {words}"], dropped
    # The retry is exported, the notifier's handling of it not yet.
    late = max(
        (sp for sp in rec.spans if sp.service == NOTIFIER and sp.name == "kafka.consume"),
        key=lambda sp: sp.start_us,
    )
    spans = [sp for sp in rec.spans if sp is not late and sp.parent_id != late.span_id]
    timeline = derive_timeline(EXEC, TRACE, spans, terminal=True, jaeger=None)
    assert "notification n-1: a retried delivery not yet handled" in timeline.missing


def test_the_critical_path_takes_the_child_that_ends_last_and_the_parents_own_time() -> None:
    rec = Recorder()
    root = rec.add("root", API, 0, 10)
    a = rec.add("a", API, 1, 3, root)
    b = rec.add("b", API, 5, 4, root)
    rec.add("early", API, 1.5, 1, root)  # overlaps a, ends before it: not on the path
    path = critical_path(rec.spans, root)
    got = [
        (seg.span_id, (seg.start_us - T0_US) / 1000, (seg.end_us - T0_US) / 1000) for seg in path
    ]
    assert got == [
        (root.span_id, 0, 1),
        (a.span_id, 1, 4),
        (root.span_id, 4, 5),
        (b.span_id, 5, 9),
        (root.span_id, 9, 10),
    ]
    assert all(not seg.waiting for seg in path)


def test_the_critical_path_follows_an_async_consumer_past_its_producers_end() -> None:
    rec = Recorder()
    producer = rec.add("publish", API, 0, 2, kind="producer")
    consumer = rec.add("consume", COORD, 5, 3, producer, kind="consumer")
    path = critical_path(rec.spans, producer)
    got = [(seg.span_id, seg.waiting, (seg.end_us - seg.start_us) / 1000) for seg in path]
    assert got == [
        (producer.span_id, False, 2),
        (producer.span_id, True, 3),  # the message waiting in the topic
        (consumer.span_id, False, 3),
    ]
