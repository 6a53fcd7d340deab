"""One execution's trace, made by the containers: every span's resource names the image it ran
in, and the trace is connected from the POST to the webhook the notifier sent. (The archiver's
batch span links to the trace rather than joining it: tests/e2e/test_replay.py.)"""

from __future__ import annotations

import contextlib

from tests.containers.podman import SERVICES, image_refs
from tests.e2e.client import ApiUser
from tests.e2e.notify_receivers import RecordingReceiver
from tests.jaeger import JaegerSpan, JaegerTrace, wait_for_trace
from tests.stack import local_stack

STACK = local_stack()
REFS = image_refs()
IMAGE_OF_SERVICE = {service: REFS[name] for name, (_, _, _, service) in SERVICES.items()}


def _roots(trace: JaegerTrace) -> list[JaegerSpan]:
    """Spans whose parent is not in the trace: one (the POST) when the trace is connected."""
    ids = {s.span_id for s in trace.spans}
    return [s for s in trace.spans if s.parent_id is None or s.parent_id not in ids]


def _through_the_notifier(trace: JaegerTrace) -> bool:
    names = {(s.service, s.name) for s in trace.spans}
    return {
        ("integr8scode-backend", "POST /api/v1/execute"),
        ("execution-coordinator", "sandbox.run"),
        ("notifier", "notification.deliver"),
        ("notifier", "POST"),  # the webhook's HTTP CLIENT span
    } <= names


async def test_an_executions_trace_is_connected_across_the_containers(user: ApiUser) -> None:
    async with RecordingReceiver() as webhook:
        response = await user.http.put(
            "/api/v1/notifications/settings",
            json={"webhook": {"url": webhook.url("/hook"), "secret": "containers-secret-0123"}},
            headers=user.headers,
        )
        assert response.status_code == 200, response.text
        result = await user.run("print(sum(range(10)))")
        assert result["status"] == "completed", result
        await webhook.wait_for(1)

    trace = await wait_for_trace(
        STACK.jaeger_query, result["trace_id"], until=_through_the_notifier
    )
    # A child can reach Jaeger before its parent (each service exports on its own schedule):
    # wait until every span's parent has arrived; then it must be one tree under the POST.
    with contextlib.suppress(AssertionError):
        trace = await wait_for_trace(
            STACK.jaeger_query, trace.trace_id, until=lambda t: len(_roots(t)) == 1, timeout_s=20
        )
    assert [r.name for r in _roots(trace)] == ["POST /api/v1/execute"], trace.names()
    for span in trace.spans:
        assert span.process.get("container.runtime") == "podman", (span.service, span.name)
        assert span.process.get("container.image.name") == IMAGE_OF_SERVICE[span.service], (
            span.service,
            span.process,
        )
