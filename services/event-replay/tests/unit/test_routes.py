"""The admin API over fakes: auth (401/403), validation (422), unknown ids (404), invalid
transitions (409), create / dry run / list / pause / resume / cancel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from integr8scode_event_replay.domain.sessions import SessionStatus
from integr8scode_events import EventEnvelope

if TYPE_CHECKING:
    from conftest import Harness

SESSIONS = "/api/v1/replay/sessions"
Bearer = Callable[..., dict[str, str]]


def body(**overrides: Any) -> dict[str, Any]:
    target = {"kind": "topic", "topic": "t1"}
    return {"filters": {"user_id": "user-1"}, "target": target, **overrides}


async def requested(harness: Harness, sid: str, desired: SessionStatus) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while harness.controls.desired.get(sid) is not desired:
        assert loop.time() < deadline, f"{desired} not requested"
        await asyncio.sleep(0.005)


@pytest.fixture
async def http(harness: Harness) -> Any:
    async with await harness.client() as client:
        yield client


async def test_without_a_valid_token_every_route_is_401(
    http: httpx.AsyncClient, make_bearer: Bearer
) -> None:
    sid = uuid.uuid4().hex
    past = datetime.now(UTC) - timedelta(hours=1)
    for headers in (
        {},
        {"Authorization": "Basic YTpi"},
        {"Authorization": "Bearer not-a-jwt"},
        make_bearer(secret="another-secret-that-is-also-long-enough!!"),
        make_bearer(exp=past, iat=past - timedelta(hours=1)),
        make_bearer(jti=None),
    ):
        for method, path in (
            ("POST", SESSIONS),
            ("GET", SESSIONS),
            ("GET", f"{SESSIONS}/{sid}"),
            ("POST", f"{SESSIONS}/{sid}/pause"),
            ("POST", f"{SESSIONS}/{sid}/resume"),
            ("POST", f"{SESSIONS}/{sid}/cancel"),
        ):
            response = await http.request(method, path, json=body(), headers=headers)
            assert response.status_code == 401, (headers, method, path, response.text)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "detail" in response.json()


async def test_a_non_admin_is_403(http: httpx.AsyncClient, make_bearer: Bearer) -> None:
    headers = make_bearer("user")
    assert (await http.get(SESSIONS, headers=headers)).status_code == 403
    response = await http.post(SESSIONS, json=body(), headers=headers)
    assert response.status_code == 403
    assert response.json() == {"detail": "replay sessions need the admin role"}


async def test_unknown_sessions_are_404(http: httpx.AsyncClient, make_bearer: Bearer) -> None:
    headers = make_bearer()
    routes = (("GET", ""), ("POST", "/pause"), ("POST", "/resume"), ("POST", "/cancel"))
    for method, suffix in routes:
        response = await http.request(method, f"{SESSIONS}/nope{suffix}", headers=headers)
        assert response.status_code == 404
        assert response.json() == {"detail": "no replay session 'nope'"}


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"filters": {}}, "at least one filter"),
        ({"filters": {"event_types": ["execution.exploded"]}}, "unknown event type"),
        ({"filters": {"event_types": []}}, "event_types"),
        (
            {"filters": {"user_id": "u", "from": "2026-01-02T00:00Z", "to": "2026-01-01T00:00Z"}},
            "from must be before to",
        ),
        ({"filters": {"user_id": "u", "from": "2026-01-01T00:00:00"}}, "timezone"),
        ({"filters": {"user_id": "u", "colour": "red"}}, "colour"),
        (body(target={"kind": "topic", "topic": "dead_letter_queue"}), "refused"),
        (body(target={"kind": "topic", "topic": "__consumer_offsets"}), "internal"),
        (body(target={"kind": "topic", "topic": "bad name!"}), "not a legal Kafka topic"),
        (body(target={"kind": "topic"}), "needs the topic name"),
        (body(target={"kind": "original", "topic": "t"}), "takes no topic"),
        (body(speed="fast"), "speed must be"),
        (body(speed=True), "speed must be"),
        (body(speed=0), "speed must be"),
        (body(speed=5000), "speed must be"),
        (body(max_events=0), "max_events must be between 1 and 100"),
        (body(max_events=101), "max_events must be between 1 and 100"),
    ],
)
async def test_invalid_requests_are_422_with_a_clear_message(
    http: httpx.AsyncClient, make_bearer: Bearer, request_body: dict[str, Any], message: str
) -> None:
    response = await http.post(SESSIONS, json=request_body, headers=make_bearer())
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


async def test_malformed_json_is_400(http: httpx.AsyncClient, make_bearer: Bearer) -> None:
    response = await http.post(
        SESSIONS,
        content=b"{nope",
        headers={**make_bearer(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed JSON body")


async def test_a_session_is_created_runs_and_reports_its_progress(
    harness: Harness,
    http: httpx.AsyncClient,
    make_bearer: Bearer,
    make_lifecycle: Callable[..., list[EventEnvelope]],
) -> None:
    harness.events.add(*make_lifecycle())
    harness.events.count_gate.clear()  # the background count has not finished when it answers
    created = await http.post(SESSIONS, json=body(reprocess=True), headers=make_bearer())
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["status"] in {"created", "running", "completed"}
    assert (view["matched"], view["planned"], view["capped"]) == (None, None, None)
    assert view["matched_is_lower_bound"] is False
    assert view["target"] == {"kind": "topic", "topic": "t1"}
    assert view["speed"] == "max"
    assert view["filters"]["to"] is not None  # defaulted to the creation time
    done = await harness.wait_status(view["id"], SessionStatus.COMPLETED)
    got = (await http.get(f"{SESSIONS}/{view['id']}", headers=make_bearer())).json()
    assert got["status"] == "completed"
    assert got["published"] == 3 == done.published
    # It handled every match, so it knows how many there were without its count.
    assert (got["matched"], got["planned"], got["capped"]) == (3, 3, False)
    assert got["position"]["event_id"] == str(harness.publisher.sent[-1].event.event_id)
    assert all(m.headers["x-replay-reprocess"] == "true" for m in harness.publisher.sent)


async def test_a_dry_run_counts_previews_and_publishes_nothing(
    harness: Harness,
    http: httpx.AsyncClient,
    make_bearer: Bearer,
    make_lifecycle: Callable[..., list[EventEnvelope]],
) -> None:
    events = make_lifecycle()
    harness.events.add(*events)
    response = await http.post(
        SESSIONS, json=body(dry_run=True, target={"kind": "original"}), headers=make_bearer()
    )
    assert response.status_code == 201
    view = response.json()
    assert view["status"] == "completed"
    assert view["dry_run"] is True
    assert (view["matched"], view["planned"], view["published"]) == (3, 3, 0)
    assert [item["event_id"] for item in view["preview"]] == [str(e.event_id) for e in events[:2]]
    assert [item["target_topic"] for item in view["preview"]] == [
        "execution_requests",
        "execution_events",
    ]
    assert harness.publisher.attempts == 0
    assert not harness.pool.is_running(view["id"])
    conflict = await http.post(f"{SESSIONS}/{view['id']}/cancel", headers=make_bearer())
    assert conflict.status_code == 409
    # A dry run is a replay trace of its own too, named by the session.
    [dry] = harness.spans("event_replay.session")
    assert dry.parent is None
    assert view["trace_id"] == format(dry.context.trace_id, "032x")
    attributes = dict(dry.attributes or {})
    assert attributes["replay.session.id"] == view["id"]
    assert (attributes["replay.dry_run"], attributes["replay.matched"]) == (True, 3)


async def test_the_cap_is_reported_and_holds(
    harness: Harness,
    http: httpx.AsyncClient,
    make_bearer: Bearer,
    make_lifecycle: Callable[..., list[EventEnvelope]],
) -> None:
    harness.events.add(*make_lifecycle())
    view = (await http.post(SESSIONS, json=body(max_events=2), headers=make_bearer())).json()
    assert view["matched"] is None  # counted in the background
    done = await harness.wait_status(view["id"], SessionStatus.COMPLETED)
    assert done.published == 2
    assert len(harness.publisher.sent) == 2
    # Stopped at the cap: the session waits for its count before it says it completed.
    got = (await http.get(f"{SESSIONS}/{view['id']}", headers=make_bearer())).json()
    assert (got["matched"], got["planned"], got["capped"]) == (3, 2, True)


async def test_a_dry_run_is_capped_in_time_and_says_its_count_is_a_lower_bound(
    harness_factory: Callable[..., Harness],
    make_bearer: Bearer,
    make_lifecycle: Callable[..., list[EventEnvelope]],
) -> None:
    harness = harness_factory(dry_run_budget_s=0.3)
    for _ in range(4):
        harness.events.add(*make_lifecycle())
    harness.events.per_event_s = 0.05  # 12 events: 0.6 s to count them all
    harness.events.page_delay_s = 1.0  # the preview never makes it
    loop = asyncio.get_running_loop()
    async with await harness.client() as http:
        started = loop.time()
        response = await http.post(SESSIONS, json=body(dry_run=True), headers=make_bearer())
        elapsed = loop.time() - started
    assert response.status_code == 201, response.text
    view = response.json()
    assert elapsed < 0.9  # the budget, not the store, decides when it answers
    assert view["status"] == "completed"
    assert view["matched_is_lower_bound"] is True
    assert 1 <= view["matched"] < 12
    assert view["capped"] is None  # fewer than the cap seen: whether more match is not known
    assert view["preview"] == []
    assert view["preview_complete"] is False
    harness.pool.stop()


async def test_a_dry_run_count_stops_one_past_the_cap(
    harness: Harness,
    http: httpx.AsyncClient,
    make_bearer: Bearer,
    make_lifecycle: Callable[..., list[EventEnvelope]],
) -> None:
    for _ in range(3):
        harness.events.add(*make_lifecycle())
    response = await http.post(
        SESSIONS, json=body(dry_run=True, max_events=4), headers=make_bearer()
    )
    view = response.json()
    assert (view["matched"], view["matched_is_lower_bound"]) == (5, True)
    assert (view["planned"], view["capped"]) == (4, True)
    assert view["preview_complete"] is True
    assert len(view["preview"]) == 2


@pytest.mark.parametrize("harness", [1], indirect=True, ids=["one-by-one"])
async def test_pause_resume_cancel_through_the_api_and_409_on_invalid_transitions(
    harness: Harness,
    http: httpx.AsyncClient,
    make_bearer: Bearer,
    make_lifecycle: Callable[..., list[EventEnvelope]],
) -> None:
    harness.events.add(*make_lifecycle())
    harness.publisher.hold()
    headers = make_bearer()
    sid = (await http.post(SESSIONS, json=body(), headers=headers)).json()["id"]
    await harness.wait_status(sid, SessionStatus.RUNNING)

    resume = await http.post(f"{SESSIONS}/{sid}/resume", headers=headers)
    assert resume.status_code == 409
    assert "can't resume a session that is running" in resume.json()["detail"]

    # The first publish is in flight: the pause applies once it returns, before the next.
    pause = asyncio.create_task(http.post(f"{SESSIONS}/{sid}/pause", headers=headers))
    await requested(harness, sid, SessionStatus.PAUSED)
    harness.publisher.release()
    paused = await pause
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    assert paused.json()["published"] == 1
    assert (await http.post(f"{SESSIONS}/{sid}/pause", headers=headers)).status_code == 409

    resumed = await http.post(f"{SESSIONS}/{sid}/resume", headers=headers)
    assert resumed.json()["status"] == "running"

    cancel = asyncio.create_task(http.post(f"{SESSIONS}/{sid}/cancel", headers=headers))
    await requested(harness, sid, SessionStatus.CANCELLED)
    harness.publisher.release()  # the second publish was in flight
    cancelled = await cancel
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["published"] == 2
    assert (await http.post(f"{SESSIONS}/{sid}/cancel", headers=headers)).status_code == 409
    assert (await http.post(f"{SESSIONS}/{sid}/resume", headers=headers)).status_code == 409


async def test_sessions_are_listed_newest_first_with_a_status_filter(
    harness: Harness,
    http: httpx.AsyncClient,
    make_bearer: Bearer,
    make_lifecycle: Callable[..., list[EventEnvelope]],
) -> None:
    harness.events.add(*make_lifecycle())
    headers = make_bearer()
    ids = [
        (await http.post(SESSIONS, json=body(dry_run=True), headers=headers)).json()["id"]
        for _ in range(3)
    ]
    page = (await http.get(SESSIONS, params={"limit": 2}, headers=headers)).json()
    assert page["total"] == 3
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    rest = (await http.get(SESSIONS, params={"limit": 2, "offset": 2}, headers=headers)).json()
    assert [item["id"] for item in rest["items"]] == [ids[0]]
    none = await http.get(SESSIONS, params={"status": "paused"}, headers=headers)
    assert none.json()["items"] == []
    bad = await http.get(SESSIONS, params={"status": "sleeping"}, headers=headers)
    assert bad.status_code == 422
    assert (await http.get(SESSIONS, params={"limit": 0}, headers=headers)).status_code == 422
