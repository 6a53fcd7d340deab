"""Replays end to end: a real execution's events, archived by event-replay, replayed through its
admin API into a fresh topic with the replay headers and the same event ids; in Jaeger the
replay is its own trace whose producer spans link back to the execution's trace; dry runs
publish nothing, the safety cap holds, sessions pause, resume and cancel; bad input is refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from integr8scode_events import decode_event
from integr8scode_events import headers as h
from integr8scode_mongo import MongoSettings
from tests.e2e.client import ApiUser
from tests.jaeger import JaegerTrace, wait_for_trace
from tests.kafka_support import read_all
from tests.polling import eventually
from tests.stack import local_stack

STACK = local_stack()
REPLAY = STACK.services["event-replay"]
SESSIONS = "/api/v1/replay/sessions"
LIFECYCLE = {"execution.requested", "execution.started", "execution.completed"}


@pytest.fixture
async def replay() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=REPLAY, timeout=30) as client:
        yield client


@pytest.fixture
async def events_store() -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(STACK.mongo_url, tz_aware=True)
    try:
        yield client[MongoSettings().database]["events"]
    finally:
        await client.close()


@pytest.fixture
async def new_topic() -> AsyncIterator[Any]:
    """Factory of fresh single-partition topics, deleted after the test."""
    admin_client = AIOKafkaAdminClient(bootstrap_servers=STACK.kafka_bootstrap)
    await admin_client.start()
    created: list[str] = []

    async def make() -> str:
        name = f"e2e-replay-{uuid.uuid4().hex[:10]}"
        await admin_client.create_topics([NewTopic(name, 1, 1)])
        created.append(name)
        return name

    try:
        yield make
    finally:
        try:
            await admin_client.delete_topics(created)
        finally:
            await admin_client.close()


async def archived_execution(
    user: ApiUser, events_store: Any, script: str = "print('replay me')"
) -> tuple[dict[str, Any], list[Any]]:
    """Run a real execution and wait until its lifecycle events are in the event store."""
    result = await user.run(script)
    assert result["status"] == "completed", result
    execution_id = result["execution_id"]

    async def archived() -> list[Any] | None:
        docs = [d async for d in events_store.find({"execution_id": execution_id})]
        return docs if {d["event_type"] for d in docs} >= LIFECYCLE else None

    docs = await eventually(archived, timeout_s=45, interval_s=0.5, what="events archived")
    return result, sorted(docs, key=lambda d: (d["occurred_at"], d["event_id"]))


async def end_offset(topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=STACK.kafka_bootstrap)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        offsets = await consumer.end_offsets([partition])
        return int(offsets[partition])
    finally:
        await consumer.stop()


async def wait_session(
    replay: httpx.AsyncClient, admin: dict[str, str], session_id: str, *statuses: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        response = await replay.get(f"{SESSIONS}/{session_id}", headers=admin)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body if body["status"] in statuses else None

    return await eventually(reached, timeout_s=60, what=f"session {session_id} {statuses}")


def header(record: Any, name: str) -> str | None:
    return next((v.decode() for k, v in record.headers if k == name), None)


@pytest.mark.contract
async def test_a_replay_publishes_the_same_events_with_replay_headers_and_links(
    user: ApiUser,
    replay: httpx.AsyncClient,
    admin: dict[str, str],
    events_store: Any,
    new_topic: Any,
) -> None:
    execution, docs = await archived_execution(user, events_store)
    execution_id = execution["execution_id"]
    stored_before = await events_store.count_documents({"execution_id": execution_id})
    topic = await new_topic()

    created = await replay.post(
        SESSIONS,
        json={
            "filters": {"execution_id": execution_id},
            "target": {"kind": "topic", "topic": topic},
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    session = await wait_session(replay, admin, created.json()["id"], "completed", "failed")
    assert session["status"] == "completed", session
    assert session["matched"] == len(docs)
    assert session["published"] == len(docs)
    assert session["position"]["event_id"] == docs[-1]["event_id"]

    records = await read_all(topic, len(docs))
    assert len(records) == len(docs)
    assert [decode_event(r.value).event_id for r in records] == [
        uuid.UUID(d["event_id"]) for d in docs
    ]
    for record, doc in zip(records, docs, strict=True):
        assert header(record, h.REPLAY_SESSION) == session["id"]
        assert header(record, h.REPLAYED_EVENT_ID) == doc["event_id"]
        assert header(record, h.SERVICE) == "event-replay"
        assert header(record, h.EVENT_TYPE) == doc["event_type"]
        assert header(record, h.REPLAY_REPROCESS) is None
        assert record.key == execution_id.encode()
        traceparent = header(record, h.TRACEPARENT)
        assert traceparent is not None
        assert traceparent.split("-")[1] == session["trace_id"]  # the replay's own trace

    # Replaying does not add to the event store.
    assert await events_store.count_documents({"execution_id": execution_id}) == stored_before

    publish_name = f"publish {topic}"

    def complete(found: JaegerTrace) -> bool:
        return len(found.named(publish_name)) == len(docs) and bool(
            found.named("event_replay.session")
        )

    replay_trace = await wait_for_trace(STACK.jaeger_query, session["trace_id"], until=complete)
    root = replay_trace.one("event_replay.session")
    assert root.parent_id is None
    assert root.service == "event-replay"
    assert root.tag("replay.session.id") == session["id"]
    batch = replay_trace.one("event_replay.batch")
    assert batch.parent_id == root.span_id
    assert batch.tag("events.batch.count") == len(docs)
    originals = {d["event_id"]: (d["trace"]["trace_id"], d["trace"]["span_id"]) for d in docs}
    for span in replay_trace.named(publish_name):
        assert span.kind == "producer"
        assert span.parent_id == batch.span_id
        original = originals[span.tag("event.id")]
        assert original[0] == execution["trace_id"]
        assert span.links == [original], span.links  # FOLLOWS_FROM the original PRODUCER span


async def test_a_dry_run_counts_and_previews_and_publishes_nothing(
    user: ApiUser,
    replay: httpx.AsyncClient,
    admin: dict[str, str],
    events_store: Any,
    new_topic: Any,
) -> None:
    execution, docs = await archived_execution(user, events_store)
    topic = await new_topic()
    response = await replay.post(
        SESSIONS,
        json={
            "filters": {"execution_id": execution["execution_id"]},
            "target": {"kind": "topic", "topic": topic},
            "dry_run": True,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["status"] == "completed"
    assert view["dry_run"] is True
    assert (view["matched"], view["published"]) == (len(docs), 0), json.dumps(view)
    assert (view["matched_is_lower_bound"], view["preview_complete"]) == (False, True)
    assert [p["event_id"] for p in view["preview"]] == [d["event_id"] for d in docs]
    assert {p["target_topic"] for p in view["preview"]} == {topic}
    assert view["preview"][0]["event_type"] == "execution.requested"
    # A dry run ends before its response: whatever it published would be there by now.
    assert await end_offset(topic) == 0

    # Its own replay trace, linked to the admin's request, whose span names the session.
    def dry_run_traced(found: JaegerTrace) -> bool:
        return bool(found.named("event_replay.session"))

    assert view["trace_id"], view
    dry = await wait_for_trace(STACK.jaeger_query, view["trace_id"], until=dry_run_traced)
    [session_span] = dry.named("event_replay.session")
    assert session_span.tag("replay.session.id") == view["id"]
    assert session_span.tag("replay.dry_run") is True
    [(request_trace_id, request_span_id)] = session_span.links

    def has_request_span(found: JaegerTrace) -> bool:
        return any(span.span_id == request_span_id for span in found.spans)

    request = await wait_for_trace(STACK.jaeger_query, request_trace_id, until=has_request_span)
    assert request.by_id(request_span_id).tag("replay.session.id") == view["id"]


async def test_the_safety_cap_holds(
    user: ApiUser,
    replay: httpx.AsyncClient,
    admin: dict[str, str],
    events_store: Any,
    new_topic: Any,
) -> None:
    execution, docs = await archived_execution(user, events_store)
    assert len(docs) >= 3
    topic = await new_topic()
    created = await replay.post(
        SESSIONS,
        json={
            "filters": {"execution_id": execution["execution_id"]},
            "target": {"kind": "topic", "topic": topic},
            "max_events": 2,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    # The POST answers before anything is counted: the session counts in the background.
    assert (created.json()["matched"], created.json()["capped"]) == (None, None)
    session = await wait_session(replay, admin, created.json()["id"], "completed", "failed")
    assert (session["status"], session["published"]) == ("completed", 2)
    assert (session["matched"], session["capped"], session["planned"]) == (len(docs), True, 2)
    assert await end_offset(topic) == 2
    records = await read_all(topic, 2)
    assert [header(r, h.REPLAYED_EVENT_ID) for r in records] == [d["event_id"] for d in docs[:2]]


async def test_a_paced_session_pauses_resumes_and_cancels(
    user: ApiUser,
    replay: httpx.AsyncClient,
    admin: dict[str, str],
    events_store: Any,
    new_topic: Any,
) -> None:
    # started → completed at least 0.3 s apart: at a thousand times slower, a wait of
    # REPLAY_MAX_WAIT_S (30 s) that the session is paused, resumed and cancelled in.
    execution, docs = await archived_execution(
        user, events_store, "import time; time.sleep(0.3); print('slow')"
    )
    topic = await new_topic()
    created = await replay.post(
        SESSIONS,
        json={
            "filters": {"execution_id": execution["execution_id"]},
            "target": {"kind": "topic", "topic": topic},
            "speed": 1000,
            "reprocess": True,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]

    async def first_out() -> dict[str, Any] | None:
        body: dict[str, Any] = (await replay.get(f"{SESSIONS}/{sid}", headers=admin)).json()
        return body if body["published"] >= 1 else None

    running = await eventually(first_out, timeout_s=30, what="first event replayed")
    assert running["status"] == "running"
    assert running["published"] < len(docs)

    paused = await replay.post(f"{SESSIONS}/{sid}/pause", headers=admin)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    again = await replay.post(f"{SESSIONS}/{sid}/pause", headers=admin)
    assert again.status_code == 409

    resumed = await replay.post(f"{SESSIONS}/{sid}/resume", headers=admin)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "running"

    cancelled = await replay.post(f"{SESSIONS}/{sid}/cancel", headers=admin)
    assert cancelled.status_code == 200, cancelled.text
    final = cancelled.json()
    assert final["status"] == "cancelled"
    assert final["published"] < len(docs)
    assert final["finished_at"] is not None
    assert (await replay.post(f"{SESSIONS}/{sid}/resume", headers=admin)).status_code == 409

    records = await read_all(topic, final["published"])
    assert all(header(r, h.REPLAY_REPROCESS) == "true" for r in records)
    assert await end_offset(topic) == final["published"]

    listed = await replay.get(SESSIONS, params={"status": "cancelled"}, headers=admin)
    assert sid in {item["id"] for item in listed.json()["items"]}


async def test_bad_requests_are_refused(
    user: ApiUser, replay: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await replay.get(SESSIONS)).status_code == 401
    assert (
        await replay.get(SESSIONS, headers={"Authorization": "Bearer x.y.z"})
    ).status_code == 401
    forbidden = await replay.get(SESSIONS, headers=user.headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"]
    missing = await replay.get(f"{SESSIONS}/{uuid.uuid4().hex}", headers=admin)
    assert missing.status_code == 404
    assert (
        await replay.post(f"{SESSIONS}/{uuid.uuid4().hex}/cancel", headers=admin)
    ).status_code == 404
    for body, message in (
        ({"filters": {}}, "at least one filter"),
        ({"filters": {"event_types": ["execution.exploded"]}}, "unknown event type"),
        (
            {
                "filters": {"user_id": "u"},
                "target": {"kind": "topic", "topic": "dead_letter_queue"},
            },
            "refused",
        ),
        ({"filters": {"user_id": "u"}, "speed": "warp"}, "speed must be"),
    ):
        response = await replay.post(SESSIONS, json=body, headers=admin)
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]
