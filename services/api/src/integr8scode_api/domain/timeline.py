"""Where the time of one execution went, derived from its trace (DESIGN.md §5, the trace contract).

Every phase is found by span name, kind, service and attributes, never by guessing from
timestamps alone; a phase whose spans are not in the trace is reported missing (``complete`` is
then false) rather than estimated. Offsets are milliseconds from the start of the trace's root.
Pure: no I/O; ``timeline_service.py`` feeds it the spans."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from integr8scode_api.domain.critical_path import critical_path
from integr8scode_api.domain.trace import AttributeValue, TraceSpan

API_SERVICE = "integr8scode-backend"
COORDINATOR = "execution-coordinator"
NOTIFIER = "notifier"
DLQ_PROCESSOR = "dlq-processor"
TERMINAL_EVENTS = frozenset(
    {"execution.completed", "execution.failed", "execution.timed_out", "execution.cancelled"}
)
# The phases every finished execution has, in order.
PHASES = ("accepted", "publish", "queue_wait", "sandbox", "result_stored", "status_delivered")
# The phases of an execution that ended before it reached a sandbox.
NOT_WITHOUT_A_RUN = frozenset({"sandbox", "result_stored"})
# The attributes a waterfall shows next to a bar; the rest stay in Jaeger.
KEY_ATTRIBUTES = (
    "event.type",
    "execution.status",
    "http.route",
    "http.request.method",
    "http.response.status_code",
    "messaging.destination.name",
    "messaging.consumer.group.name",
    "db.operation.name",
    "db.collection.name",
    "rate_limit.rule",
    "rate_limit.allowed",
    "saga.step",
    "saga.admit.outcome",
    "saga.queue_wait_ms",
    "sandbox.runner",
    "sandbox.exit_code",
    "notification.channel",
    "notification.status",
    "notification.attempts",
    "dlq.retry_count",
    "dlq.status",
    "dlq.retry.outcome",
    "error.type",
)


class PhasePart(BaseModel):
    name: str
    start_ms: float
    duration_ms: float
    span_id: str


class Phase(BaseModel):
    name: str = Field(description=f"One of {', '.join(PHASES)}.")
    start_ms: float
    duration_ms: float
    span_ids: list[str] = Field(description="The spans the phase was derived from.")
    parts: list[PhasePart] = []
    details: dict[str, float | int | str] = {}


class Delivery(BaseModel):
    """One run of the notifier's delivery of this notification (the first, or after a retry)."""

    span_id: str
    start_ms: float
    duration_ms: float
    status: str | None
    http_attempts: int = Field(description="Outbound HTTP calls made in this run.")


class DlqRetry(BaseModel):
    """A dead-lettered delivery re-published by the dlq-processor after its backoff."""

    retry: int | None
    span_id: str
    scheduled_ms: float | None = Field(description="When the dead letter was scheduled.")
    published_ms: float
    backoff_ms: float | None = Field(description="Scheduled → re-published.")


class NotificationTimeline(BaseModel):
    notification_id: str
    channel: str
    status: str | None
    attempts: int | None = Field(description="Delivery attempts as the notifier counted them.")
    start_ms: float
    duration_ms: float
    deliveries: list[Delivery]
    retries: list[DlqRetry]


class TimelineSpan(BaseModel):
    span_id: str
    parent_id: str | None
    service: str
    name: str
    kind: str
    start_ms: float
    duration_ms: float
    status: str = Field(description="ok or error")
    critical: bool = Field(description="On the critical path.")
    attributes: dict[str, AttributeValue] = {}


class CriticalSegment(BaseModel):
    span_id: str
    service: str
    name: str
    start_ms: float
    duration_ms: float
    waiting: bool = Field(description="Time between the span's end and its child's start.")


class TimelineLinks(BaseModel):
    jaeger: str | None = None


class Timeline(BaseModel):
    """``GET /api/v1/executions/{id}/timeline``."""

    execution_id: str
    trace_id: str | None
    complete: bool = Field(description="Every phase was found; no numbers are estimated.")
    missing: list[str] = Field(description="Phases (or notifications) not in the trace (yet).")
    reason: str | None = Field(default=None, description="Why the timeline is incomplete.")
    total_ms: float | None = Field(description="Start of the request to the trace's last span.")
    result_ms: float | None = Field(description="Start of the request to the status delivered.")
    phases: list[Phase]
    notifications: list[NotificationTimeline]
    critical_path: list[CriticalSegment]
    spans: list[TimelineSpan]
    links: TimelineLinks


def unavailable(
    execution_id: str, trace_id: str | None, reason: str, jaeger: str | None
) -> Timeline:
    """A timeline with nothing in it, and why."""
    return Timeline(
        execution_id=execution_id,
        trace_id=trace_id,
        complete=False,
        missing=list(PHASES),
        reason=reason,
        total_ms=None,
        result_ms=None,
        phases=[],
        notifications=[],
        critical_path=[],
        spans=[],
        links=TimelineLinks(jaeger=jaeger),
    )


class _Trace:
    """The spans of one execution with lookups by the contract's names."""

    def __init__(self, spans: Sequence[TraceSpan], execution_id: str) -> None:
        self.execution_id = execution_id
        self.spans = sorted(spans, key=lambda s: (s.start_us, s.span_id))
        self.by_id = {s.span_id: s for s in self.spans}
        self.children: dict[str, list[TraceSpan]] = {}
        for s in self.spans:
            if s.parent_id is not None:
                self.children.setdefault(s.parent_id, []).append(s)
        roots = [s for s in self.spans if s.parent_id not in self.by_id]
        servers = [s for s in roots if s.kind == "server" and s.service == API_SERVICE]
        self.root = (servers or roots or self.spans)[0] if self.spans else None
        self.origin = self.root.start_us if self.root else 0

    def ms(self, us: int) -> float:
        return round((us - self.origin) / 1000, 3)

    def mine(self, span: TraceSpan) -> bool:
        """Not another execution's span (a batch shares one request, so one trace)."""
        owner = span.attr("execution.id")
        return owner is None or owner == self.execution_id

    def find(
        self,
        name: str | None = None,
        service: str | None = None,
        kind: str | None = None,
        **attrs: AttributeValue,
    ) -> list[TraceSpan]:
        found = []
        for s in self.spans:
            if name is not None and s.name != name and not s.name.startswith(name + " "):
                continue
            if (service is not None and s.service != service) or (kind and s.kind != kind):
                continue
            if not self.mine(s):
                continue
            if all(s.attr(k.replace("__", ".")) == v for k, v in attrs.items()):
                found.append(s)
        return found

    def first(
        self,
        name: str | None = None,
        service: str | None = None,
        kind: str | None = None,
        **attrs: AttributeValue,
    ) -> TraceSpan | None:
        found = self.find(name, service, kind, **attrs)
        return found[0] if found else None

    def part(self, name: str, span: TraceSpan) -> PhasePart:
        return PhasePart(
            name=name,
            start_ms=self.ms(span.start_us),
            duration_ms=span.duration_us / 1000,
            span_id=span.span_id,
        )

    def phase(self, name: str, start: int, end: int, spans: Sequence[TraceSpan]) -> Phase:
        return Phase(
            name=name,
            start_ms=self.ms(start),
            duration_ms=max(0, end - start) / 1000,
            span_ids=[s.span_id for s in spans],
        )


def _accepted(t: _Trace, publish: TraceSpan | None) -> Phase | None:
    root = t.root
    if root is None or root.kind != "server" or root.service != API_SERVICE:
        return None
    end = publish.start_us if publish else root.end_us
    accepted = t.phase("accepted", root.start_us, end, [root])
    for name, label in (("rate_limit.check", "rate_limit"), ("insert executions", "store")):
        span = next((c for c in t.children.get(root.span_id, []) if c.name == name), None)
        if span is not None:
            accepted.parts.append(t.part(label, span))
    return accepted


def _queue_wait(t: _Trace, publish: TraceSpan | None) -> Phase | None:
    """From the broker's acknowledgement to the saga's start: the Kafka hop, the queue, and
    admission (per-user and global concurrency)."""
    consume = t.first("kafka.consume", COORDINATOR, event__type="execution.requested")
    saga = t.first("saga.execution", COORDINATOR)
    if publish is None or consume is None or saga is None:
        return None
    wait = t.phase("queue_wait", publish.end_us, saga.start_us, [consume, saga])
    wait.details["kafka_hop_ms"] = max(0, consume.start_us - publish.start_us) / 1000
    admit = t.first("saga.admit", COORDINATOR)
    queued = t.first("saga.queue_wait", COORDINATOR)
    for label, span in (("kafka", consume), ("queue", queued), ("admission", admit)):
        if span is not None:
            wait.parts.append(t.part(label, span))
    if admit is not None:
        wait.details["admission_ms"] = admit.duration_us / 1000
    if isinstance(ms := saga.attr("saga.queue_wait_ms"), int | float):
        wait.details["queue_wait_ms"] = float(ms)
    return wait


def _sandbox(t: _Trace) -> Phase | None:
    run = t.first("sandbox.run", COORDINATOR)
    if run is None:
        return None
    sandbox = t.phase("sandbox", run.start_us, run.end_us, [run])
    for label in ("spawn", "compile", "execute"):
        span = t.first(f"sandbox.{label}", COORDINATOR)
        if span is not None:
            sandbox.parts.append(t.part(label, span))
    if not sandbox.parts:  # no finer spans from this runner: the run is one part
        sandbox.parts.append(t.part("run", run))
    if isinstance(code := run.attr("sandbox.exit_code"), int):
        sandbox.details["exit_code"] = code
    return sandbox


def _status_delivered(t: _Trace) -> Phase | None:
    """The api's lifecycle consumer applying the terminal event (what GET and SSE then show)."""
    for span in t.find("kafka.consume", API_SERVICE, "consumer"):
        if span.attr("event.type") in TERMINAL_EVENTS:
            phase = t.phase("status_delivered", span.start_us, span.end_us, [span])
            phase.details["event_type"] = str(span.attr("event.type"))
            return phase
    return None


def _phases(t: _Trace) -> tuple[list[Phase], set[str]]:
    publish = t.first(None, API_SERVICE, "producer", event__type="execution.requested")
    stored = t.first("saga.step", COORDINATOR, saga__step="store_result")
    candidates = [
        _accepted(t, publish),
        t.phase("publish", publish.start_us, publish.end_us, [publish]) if publish else None,
        _queue_wait(t, publish),
        _sandbox(t),
        t.phase("result_stored", stored.start_us, stored.end_us, [stored]) if stored else None,
        _status_delivered(t),
    ]
    found = [p for p in candidates if p is not None]
    names = {p.name for p in found}
    return found, {n for n in PHASES if n not in names}


def _notifications(t: _Trace) -> tuple[list[NotificationTimeline], list[str]]:
    missing: list[str] = []
    deliveries: dict[str, list[TraceSpan]] = {}
    for span in t.find("notification.deliver", NOTIFIER):
        nid = span.attr("notification.id")
        if isinstance(nid, str):
            deliveries.setdefault(nid, []).append(span)
    notifier_saw_end = any(
        s.attr("event.type") in TERMINAL_EVENTS for s in t.find("kafka.consume", NOTIFIER)
    )
    if not notifier_saw_end:
        missing.append("notifications")
    result = []
    for nid, runs in deliveries.items():
        last = runs[-1]
        event_id = last.attr("event.id")
        retries = _retries(t, event_id) if isinstance(event_id, str) else []
        attempts = last.attr("notification.attempts")
        status = last.attr("notification.status")
        end = max(s.end_us for s in runs)
        pending = _dlq_pending(t, event_id) if isinstance(event_id, str) else None
        if pending is not None:
            missing.append(f"notification {nid}: {pending}")
        result.append(
            NotificationTimeline(
                notification_id=nid,
                channel=str(last.attr("notification.channel") or "unknown"),
                status=str(status) if status is not None else None,
                attempts=attempts if isinstance(attempts, int) else None,
                start_ms=t.ms(runs[0].start_us),
                duration_ms=(end - runs[0].start_us) / 1000,
                deliveries=[
                    Delivery(
                        span_id=s.span_id,
                        start_ms=t.ms(s.start_us),
                        duration_ms=s.duration_us / 1000,
                        status=str(s.attr("notification.status") or "") or None,
                        http_attempts=sum(
                            1
                            for c in t.children.get(s.span_id, [])
                            if c.kind == "client" and c.attr("http.request.method") is not None
                        ),
                    )
                    for s in runs
                ],
                retries=retries,
            )
        )
    return result, missing


def _dead_letters(t: _Trace, event_id: str) -> list[TraceSpan]:
    return [
        s
        for s in t.find("dlq.consume", DLQ_PROCESSOR, event__id=event_id)
        if s.attr("dlq.original.consumer_group") == NOTIFIER
    ]


def _retries(t: _Trace, event_id: str) -> list[DlqRetry]:
    scheduled = _dead_letters(t, event_id)
    out = []
    for retry in t.find("dlq.retry", DLQ_PROCESSOR, event__id=event_id):
        if retry.attr("messaging.consumer.group.name") != NOTIFIER:
            continue
        before = [s for s in scheduled if s.end_us <= retry.start_us]
        # The dead letter's latest intake before the retry is what scheduled it.
        intake = max(before, key=lambda s: s.end_us) if before else None
        count = retry.attr("dlq.retry_count")
        out.append(
            DlqRetry(
                retry=count if isinstance(count, int) else None,
                span_id=retry.span_id,
                scheduled_ms=t.ms(intake.end_us) if intake else None,
                published_ms=t.ms(retry.start_us),
                backoff_ms=(retry.start_us - intake.end_us) / 1000 if intake else None,
            )
        )
    return out


def _dlq_pending(t: _Trace, event_id: str) -> str | None:
    """What of the notifier's dead-letter story for ``event_id`` is not in the trace yet: every
    dead-lettered handling is taken in by the dlq-processor, every intake that scheduled a retry
    is followed by the retry, and every retry by the notifier handling it again."""
    handled = [
        s
        for s in t.find("kafka.consume", NOTIFIER, "consumer", event__id=event_id)
        if s.attr("event.type") in TERMINAL_EVENTS
    ]
    dead = sum(1 for s in handled if s.attr("messaging.dead_lettered") is True)
    intakes = _dead_letters(t, event_id)
    scheduled = sum(1 for s in intakes if s.attr("dlq.status") == "scheduled")
    retries = [
        r
        for r in t.find("dlq.retry", DLQ_PROCESSOR, event__id=event_id)
        if r.attr("messaging.consumer.group.name") == NOTIFIER
    ]
    if len(intakes) < dead:
        return "a dead letter not yet taken in by the dlq-processor"
    if len(retries) < scheduled:
        return "a retry is scheduled"
    if len(handled) < 1 + len(retries):
        return "a retried delivery not yet handled"
    return None


def _span_view(t: _Trace, span: TraceSpan, critical: set[str]) -> TimelineSpan:
    return TimelineSpan(
        span_id=span.span_id,
        parent_id=span.parent_id,
        service=span.service,
        name=span.name,
        kind=span.kind,
        start_ms=t.ms(span.start_us),
        duration_ms=span.duration_us / 1000,
        status="error" if span.error else "ok",
        critical=span.span_id in critical,
        attributes={k: v for k in KEY_ATTRIBUTES if (v := span.attr(k)) is not None},
    )


def derive_timeline(
    execution_id: str,
    trace_id: str,
    spans: Sequence[TraceSpan],
    *,
    terminal: bool,
    jaeger: str | None,
    ran: bool = True,
) -> Timeline:
    """The timeline of ``execution_id`` from the spans of its trace. ``terminal``: the
    execution has ended (before that the later phases are missing as a matter of course).
    ``ran``: it reached a sandbox; one that ended before (cancelled while queued, not queued)
    has no sandbox or stored result to wait for."""
    t = _Trace(spans, execution_id)
    if t.root is None:
        return unavailable(execution_id, trace_id, "the trace has no spans", jaeger)
    phases, missing_phases = _phases(t)
    notifications, missing_notes = _notifications(t)
    unexpected = set() if ran else NOT_WITHOUT_A_RUN
    missing = [p for p in PHASES if p in missing_phases - unexpected] + missing_notes
    path = critical_path(t.spans, t.root)
    on_path = {seg.span_id for seg in path}
    end = max(s.end_us for s in t.spans)
    delivered = next((p for p in phases if p.name == "status_delivered"), None)
    reasons = []
    if not terminal:
        reasons.append("the execution has not finished yet")
    if missing:
        reasons.append(
            "not in the trace (yet): " + ", ".join(missing) + " (not yet exported, sampled "
            "out, or that service's tracing is off)"
        )
    return Timeline(
        execution_id=execution_id,
        trace_id=trace_id,
        complete=terminal and not missing,
        missing=missing,
        reason="; ".join(reasons) or None,
        total_ms=t.ms(end),
        result_ms=round(delivered.start_ms + delivered.duration_ms, 3) if delivered else None,
        phases=sorted(phases, key=lambda p: PHASES.index(p.name)),
        notifications=notifications,
        critical_path=[
            CriticalSegment(
                span_id=seg.span_id,
                service=t.by_id[seg.span_id].service,
                name=t.by_id[seg.span_id].name,
                start_ms=t.ms(seg.start_us),
                duration_ms=(seg.end_us - seg.start_us) / 1000,
                waiting=seg.waiting,
            )
            for seg in path
        ],
        spans=[_span_view(t, s, on_path) for s in t.spans],
        links=TimelineLinks(jaeger=jaeger),
    )
