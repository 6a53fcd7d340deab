"""A hop with tracing off passes the W3C context on unchanged (issue 11, point 3).

The notifier is restarted with ``OTEL_SDK_DISABLED=true``. For an execution with a webhook, the
``notification.sent`` it publishes carries exactly the ``traceparent`` of the terminal event it
consumed (the coordinator's publish span: nothing new was recorded in between), the receiver
gets no context (third-party target), and the next hop — the event store's archiver — continues
the execution's trace under that span. The notifier is restarted as it was afterwards. It stops
and starts a part of the native stack of this clone, so it runs near the end and only there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from integr8scode_events import headers as h
from integr8scode_events.topics import NOTIFICATION_EVENTS
from tests.e2e import fault_checks
from tests.e2e.client import ApiUser
from tests.e2e.notify_receivers import RecordingReceiver
from tests.e2e.stack_control import component, native_stack_here, services_ready
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.stack import local_stack

STACK = local_stack()

pytestmark = pytest.mark.skipif(
    not native_stack_here(), reason="needs the native stack started from this clone"
)


@pytest.fixture
async def untraced_notifier() -> AsyncIterator[None]:
    component("services", "stop", "notifier")
    component("services", "start", "notifier", env={"OTEL_SDK_DISABLED": "true"})
    await services_ready()
    try:
        yield
    finally:
        component("services", "stop", "notifier")
        component("services", "start", "notifier")
        await services_ready()


@pytest.mark.usefixtures("untraced_notifier")
async def test_a_notifier_with_tracing_off_passes_the_context_on_unchanged(user: ApiUser) -> None:
    before = await fault_checks.end_offsets(NOTIFICATION_EVENTS)
    async with RecordingReceiver() as receiver:
        settings = await user.http.put(
            "/api/v1/notifications/settings",
            json={"webhook": {"url": receiver.url("/hook")}},
            headers=user.headers,
        )
        assert settings.status_code == 200, settings.text
        result = await user.run("print('untraced hop')")
        [delivered] = await receiver.wait_for(1)
    assert delivered.header("traceparent") is None  # a third party gets no context

    execution_id, trace_id = result["execution_id"], result["trace_id"]
    records = await fault_checks.records_between(
        before, await fault_checks.end_offsets(NOTIFICATION_EVENTS)
    )
    [sent] = [
        h.to_dict(r.headers)
        for r in records
        if execution_id.encode() == r.key
        and h.to_dict(r.headers)[h.EVENT_TYPE] == "notification.sent"
    ]

    def terminal_and_archived(found: JaegerTrace) -> bool:
        return any(
            s.service == "event-replay" and s.tag("event.type") == "notification.sent"
            for s in found.spans
        ) and bool(found.named("publish execution_events"))

    trace = await wait_for_trace(STACK.jaeger_query, trace_id, until=terminal_and_archived)
    [terminal] = [
        s
        for s in trace.named("publish execution_events")
        if s.tag("event.type") == "execution.completed"
    ]
    version, sent_trace_id, parent_span_id, flags = sent[h.TRACEPARENT].split("-")
    assert version == "00"
    assert int(flags, 16) & 0x01  # still sampled: the next hop records
    assert sent_trace_id == trace_id  # the execution's trace, passed on
    assert parent_span_id == terminal.span_id  # unchanged: the span of the event it consumed
    assert not [s for s in trace.spans if s.service == "notifier"]  # it recorded nothing
    [archived] = [
        s
        for s in trace.spans
        if s.service == "event-replay"
        and s.kind == "consumer"
        and s.tag("event.type") == "notification.sent"
    ]
    assert archived.parent_id == terminal.span_id  # the next hop continues the trace
