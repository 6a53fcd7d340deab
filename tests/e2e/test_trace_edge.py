"""The public edge does not take a caller's trace context on trust, and third-party receivers
do not get the platform's.

A client's ``traceparent`` (flags ``00`` or ``01``) neither picks the trace id the platform
stores nor switches recording off: the execution is traced, whole, under a trace id the api
chose, and the api's server span links to the caller's span context. Webhook and Slack
receivers get no ``traceparent``/``tracestate``/``baggage`` (the notifier's default), while the
notifier's client spans are still in the execution's trace.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.client import ApiUser
from tests.e2e.notify_receivers import RecordingReceiver
from tests.jaeger import JaegerSpan, JaegerTrace, wait_for_trace
from tests.stack import local_stack

STACK = local_stack()
API_SERVICE, COORDINATOR, NOTIFIER = "integr8scode-backend", "execution-coordinator", "notifier"
CONTEXT_HEADERS = ("traceparent", "tracestate", "baggage")


def _execute_server_span(trace: JaegerTrace) -> JaegerSpan | None:
    return next(
        (
            s
            for s in trace.spans
            if s.service == API_SERVICE and s.kind == "server" and "/execute" in s.name
        ),
        None,
    )


def _whole_execution(trace: JaegerTrace) -> bool:
    names = set(trace.names())
    return (
        _execute_server_span(trace) is not None
        and {"sandbox.run", "publish execution_requests", "publish execution_events"} <= names
        and any(s.service == COORDINATOR for s in trace.named("kafka.consume"))
    )


async def _jaeger_has_no_trace(trace_id: str) -> bool:
    async with httpx.AsyncClient(base_url=STACK.jaeger_query, timeout=5) as http:
        response = await http.get(f"/api/traces/{trace_id}")
    return response.status_code == 404 or not (response.json().get("data") or [])


@pytest.mark.parametrize("flags", ["00", "01"])
async def test_a_callers_traceparent_neither_picks_nor_silences_the_trace(
    user: ApiUser, flags: str
) -> None:
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response = await user.execute(
        "print(sum(range(10)))",
        headers={
            "traceparent": f"00-{caller_trace}-{caller_span}-{flags}",
            "tracestate": "caller=e2e",
            "baggage": "user.id=someone-else",
        },
    )
    assert response.status_code == 202, response.text
    result = await user.wait_terminal(response.json()["execution_id"])
    assert result["status"] == "completed", result
    trace_id = result["trace_id"]
    assert trace_id
    assert trace_id != caller_trace  # the platform chose it

    # Recorded, whole, whatever the caller's flags said.
    trace = await wait_for_trace(STACK.jaeger_query, trace_id, until=_whole_execution)
    server = _execute_server_span(trace)
    assert server is not None
    assert server.parent_id is None  # the root of the platform's trace
    assert (caller_trace, caller_span) in server.links
    assert server.tag("integr8scode.caller.trace_id") == caller_trace
    assert server.tag("execution.id") == result["execution_id"]
    assert {API_SERVICE, COORDINATOR} <= trace.services()
    # Nothing was stored under the caller's trace id.
    assert await _jaeger_has_no_trace(caller_trace)


def _delivered_to_both(trace: JaegerTrace) -> bool:
    clients = [
        s
        for s in trace.spans
        if s.service == NOTIFIER and s.kind == "client" and s.tag("http.request.method")
    ]
    return len(trace.named("notification.deliver")) >= 2 and len(clients) >= 2


async def test_receivers_get_no_internal_trace_context(user: ApiUser) -> None:
    async with RecordingReceiver() as webhook, RecordingReceiver() as slack:
        response = await user.http.put(
            "/api/v1/notifications/settings",
            json={
                "webhook": {"url": webhook.url("/hook"), "secret": "e2e-edge-secret-0123456789"},
                "slack": {"webhook_url": slack.url("/services/T0EDGE/B0EDGE/EDGETOKEN")},
            },
            headers=user.headers,
        )
        assert response.status_code == 200, response.text
        result = await user.run("print('hi')")
        (hook,) = await webhook.wait_for(1)
        (message,) = await slack.wait_for(1)

    for received in (hook, message):
        assert {name: received.header(name) for name in CONTEXT_HEADERS} == dict.fromkeys(
            CONTEXT_HEADERS
        )
    # The deliveries themselves are still traced, outbound calls included.
    trace = await wait_for_trace(
        STACK.jaeger_query, result["trace_id"], until=_delivered_to_both, timeout_s=60
    )
    assert {s.tag("notification.channel") for s in trace.named("notification.deliver")} == {
        "webhook",
        "slack",
    }
