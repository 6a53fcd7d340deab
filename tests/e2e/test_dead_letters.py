"""A notification that fails goes through the dead-letter queue and stays in its trace.

The user's webhook receiver (a local server started by the test) answers 500 for a while: the
notifier's in-process attempts run out, the message is dead-lettered, the DLQ processor stores it
and re-publishes it to the notifier's group, and once the receiver recovers the user gets exactly
one accepted message. The `dlq.consume` span and the retried handling belong to the trace of the
original request. With the receiver down for good, the dead letter ends `discarded` with its
reason, visible in the DLQ admin API. Bad input to that API gets clear 4xx answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.client import ApiUser
from tests.e2e.notify_receivers import Answer, RecordingReceiver, holds_for
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()
DLQ = STACK.services["dlq-processor"]
MESSAGES = "/api/v1/dlq/messages"
SECRET = "e2e-dlq-webhook-secret-0123456789"
BROKEN = Answer(500, "receiver is broken")


@pytest.fixture
async def dlq() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=DLQ, timeout=30) as client:
        yield client


async def _webhook_only(user: ApiUser, receiver: RecordingReceiver) -> None:
    response = await user.http.put(
        "/api/v1/notifications/settings",
        json={"webhook": {"url": receiver.url("/hook"), "secret": SECRET}},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text


async def _dead_letter_of(
    dlq: httpx.AsyncClient, admin: dict[str, str], execution_id: str, **filters: str
) -> dict[str, Any] | None:
    response = await dlq.get(
        MESSAGES,
        params={"execution_id": execution_id, "consumer_group": "notifier", **filters},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    assert len(items) <= 1, items  # one record per failed message, however often it failed
    return items[0] if items else None


async def _webhook_delivery(user: ApiUser, execution_id: str) -> dict[str, Any] | None:
    response = await user.http.get(
        "/api/v1/notifications", params={"execution_id": execution_id}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return next((i for i in response.json()["items"] if i["channel"] == "webhook"), None)


def _retried_in_trace(trace: JaegerTrace) -> bool:
    """Every span the assertions below look at has reached Jaeger (each service exports on
    its own schedule)."""
    notifier = [s for s in trace.spans if s.service == "notifier"]
    delivers = [s for s in notifier if s.name == "notification.deliver"]
    consumes = [s for s in notifier if s.name == "kafka.consume"]
    ok = [s for s in notifier if s.tag("http.response.status_code") == 200]
    dlq = {s.name for s in trace.spans if s.service == "dlq-processor"}
    return (
        {"dlq.consume", "dlq.retry"} <= dlq
        and len(delivers) >= 2
        and len(consumes) >= 2
        and bool(ok)
    )


@pytest.mark.contract
async def test_a_receiver_that_recovers_gets_exactly_one_message_in_the_same_trace(
    user: ApiUser, dlq: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    async with RecordingReceiver((BROKEN,)) as receiver:
        await _webhook_only(user, receiver)
        result = await user.run("print('dead letter me')")
        execution_id, trace_id = result["execution_id"], result["trace_id"]

        # The receiver answers 500 until the failure reached the DLQ processor; then it recovers.
        record = await eventually(
            lambda: _dead_letter_of(dlq, admin, execution_id),
            timeout_s=60,
            what="the failed notification dead-lettered",
        )
        receiver.answer_with(Answer())
        failed_before = len(receiver.requests)

        async def delivered() -> dict[str, Any] | None:
            item = await _webhook_delivery(user, execution_id)
            return item if item and item["status"] == "delivered" else None

        delivery = await eventually(delivered, timeout_s=60, what="the retried delivery")
        await holds_for(lambda: _same_count(receiver, len(receiver.requests)), duration_s=2)

    # Exactly one request after the recovery: the one the receiver accepted.
    assert len(receiver.requests) == failed_before + 1
    ids = {r.header("X-Integr8scode-Delivery") for r in receiver.requests}
    assert ids == {delivery["notification_id"]}  # one notification, however many attempts
    assert delivery["attempts"] == len(receiver.requests)
    assert delivery["last_status_code"] == 200

    assert record["trace_id"] == trace_id  # the dead letter belongs to the request's trace
    assert record["topic"] == "execution_events"
    assert record["event_type"] == "execution.completed"
    detail = (await dlq.get(f"{MESSAGES}/{record['id']}", headers=admin)).json()
    assert detail["error"]["type"].endswith("DeliveryFailedError")
    assert "500" in detail["error"]["message"]
    assert SECRET not in str(detail)

    # One trace: the POST, the coordinator, the first (failed) notifier handling, dlq.consume,
    # the retry publish and the second (successful) notifier handling.
    trace = await wait_for_trace(STACK.jaeger_query, trace_id, until=_retried_in_trace)
    [post] = [
        s
        for s in trace.spans
        if s.service == "integr8scode-backend"
        and s.kind == "server"
        and s.tag("http.request.method") == "POST"
    ]
    assert post.parent_id is None  # the client's POST is the root of it all
    consume = trace.named("dlq.consume")[0]
    assert consume.service == "dlq-processor"
    assert consume.kind == "consumer"
    # Its parent is the failed message's context; it links to the span that dead-lettered it.
    [routed] = [
        s
        for s in trace.named("publish dead_letter_queue")
        if s.service == "notifier" and (trace.trace_id, s.span_id) in consume.links
    ]
    assert routed.tag("event.id") == consume.tag("event.id") == routed.tag("messaging.message.id")
    assert routed.tag("event.type") == "execution.completed"
    retry = [s for s in trace.named("dlq.retry") if s.service == "dlq-processor"]
    assert retry, trace.names()
    notifier_consumes = [s for s in trace.named("kafka.consume") if s.service == "notifier"]
    assert len(notifier_consumes) >= 2  # the original handling and the retried one
    retried = [s for s in notifier_consumes if _descends_from(trace, s, retry[0].span_id)]
    assert retried, "the retried notifier handling is not under dlq.retry"


def _descends_from(trace: JaegerTrace, span: Any, ancestor_id: str) -> bool:
    current = span
    while current.parent_id:
        if current.parent_id == ancestor_id:
            return True
        current = trace.by_id(current.parent_id)
    return False


async def _same_count(receiver: RecordingReceiver, count: int) -> bool:
    return len(receiver.requests) == count


async def test_a_receiver_down_for_good_ends_discarded_with_its_reason(
    user: ApiUser, dlq: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    async with RecordingReceiver((BROKEN,)) as receiver:
        await _webhook_only(user, receiver)
        result = await user.run("print('nobody listens')")
        execution_id = result["execution_id"]

        async def discarded() -> dict[str, Any] | None:
            return await _dead_letter_of(dlq, admin, execution_id, status="discarded")

        record = await eventually(discarded, timeout_s=120, what="the dead letter discarded")

    assert "max attempts" in (record["discard_reason"] or "")
    assert "500" in record["discard_reason"]
    assert record["retry_count"] >= 1  # it was retried before it was given up
    delivery = await _webhook_delivery(user, execution_id)
    assert delivery is not None
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == len(receiver.requests)
    stats = (await dlq.get("/api/v1/dlq/stats", headers=admin)).json()
    assert stats["by_consumer_group"]["notifier"]["by_status"].get("discarded", 0) >= 1


async def test_the_dlq_admin_api_refuses_bad_input_clearly(
    user: ApiUser, dlq: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    unknown = await dlq.get(f"{MESSAGES}/no-such-dead-letter", headers=admin)
    assert unknown.status_code == 404
    assert unknown.json()["detail"]
    retry_unknown = await dlq.post(f"{MESSAGES}/no-such-dead-letter/retry", headers=admin)
    assert retry_unknown.status_code == 404
    bad_filter = await dlq.get(MESSAGES, params={"status": "exploded"}, headers=admin)
    assert bad_filter.status_code == 422
    assert "status" in bad_filter.text
    assert (await dlq.get(MESSAGES, params={"limit": 0}, headers=admin)).status_code == 422
    assert (await dlq.get(MESSAGES, headers=user.headers)).status_code == 403
    assert (await dlq.get(MESSAGES)).status_code == 401
    assert (await dlq.get(MESSAGES, headers={"Authorization": "Bearer nope"})).status_code == 401
