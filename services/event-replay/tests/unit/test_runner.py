"""A session's run over fakes: order, cap, pacing, pause/resume/cancel between messages,
failures, release at shutdown and resumption from the cursor, and its spans."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from opentelemetry.trace import SpanContext, StatusCode

from integr8scode_event_replay.domain.errors import StoreUnavailableError
from integr8scode_event_replay.domain.sessions import ReplaySession, SessionStatus
from integr8scode_event_replay.domain.spec import ReplayFilters
from integr8scode_event_replay.pool import SessionPool
from integr8scode_event_replay.runner import (
    BATCH_SPAN,
    SESSION_ID,
    SESSION_SPAN,
    RunPolicy,
    SessionRunner,
)
from integr8scode_events import EventEnvelope
from integr8scode_events import headers as h

if TYPE_CHECKING:
    from conftest import Harness

S = SessionStatus
FAST_POLICY = RunPolicy(
    batch_size=2, publish_attempts=2, publish_backoff_s=0.001, progress_interval_s=0.05
)
Lifecycle = Callable[..., list[EventEnvelope]]


async def run_to_end(task: asyncio.Task[None], timeout_s: float = 5.0) -> None:
    await asyncio.wait_for(task, timeout_s)


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_a_session_replays_every_match_in_order_then_completes(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    first = make_lifecycle("exec-1", start=datetime(2026, 1, 1, tzinfo=UTC))
    second = make_lifecycle("exec-2", start=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    harness.events.add(*first, *second)
    wanted = ("execution.requested", "execution.completed")
    session = harness.new_session(filters=ReplayFilters(event_types=wanted, user_id="user-1"))
    await run_to_end(asyncio.create_task(harness.runner(session).run()))

    stored = await harness.stored(session.id)
    assert stored.status is S.COMPLETED
    assert stored.published == 4
    assert {m.event.event_type for m in harness.publisher.sent} == set(wanted)
    assert (stored.skipped, stored.failed) == (0, 0)
    assert stored.owner is None
    assert stored.lease_until is None
    assert stored.finished_at is not None
    assert stored.started_at is not None
    sent = harness.publisher.sent
    occurred = [m.event.occurred_at for m in sent]
    assert occurred == sorted(occurred)
    assert stored.cursor is not None
    assert stored.cursor.event_id == str(sent[-1].event.event_id)
    assert all(m.topic == "replay-test" for m in sent)
    assert all(m.headers[h.REPLAY_SESSION] == session.id for m in sent)
    assert [m.headers[h.REPLAYED_EVENT_ID] for m in sent] == [str(m.event.event_id) for m in sent]


async def test_spans_one_root_session_span_and_one_child_per_batch(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle(), *make_lifecycle())  # 6 events, batches of 2
    session = harness.new_session()
    creator = SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=True)
    await run_to_end(asyncio.create_task(harness.runner(session, creator).run()))

    (root,) = harness.spans(SESSION_SPAN)
    assert root.parent is None  # a replay is its own trace
    assert root.attributes is not None
    assert root.attributes[SESSION_ID] == session.id
    assert root.attributes["replay.published"] == 6
    assert [link.context.span_id for link in root.links] == [0xDEF]
    batches = harness.spans(BATCH_SPAN)
    assert len(batches) == 3
    for batch in batches:
        assert batch.parent is not None
        assert batch.parent.span_id == root.context.span_id
        assert batch.context.trace_id == root.context.trace_id
        assert batch.attributes is not None
        assert batch.attributes["events.batch.count"] == 2
        assert batch.attributes[SESSION_ID] == session.id
    stored = await harness.stored(session.id)
    assert stored.trace_id == f"{root.context.trace_id:032x}"


@pytest.mark.parametrize("harness", [1], indirect=True, ids=["one-by-one"])
async def test_the_next_page_is_read_while_the_current_one_is_published(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle(), *make_lifecycle())  # 6 events, pages of 2
    harness.publisher.hold()
    session = harness.new_session()
    run = asyncio.create_task(harness.runner(session).run())

    await wait_for(lambda: harness.publisher.attempts == 1)  # the first event waits for its ack
    assert harness.events.pages == 2  # ... and the second page is already being read
    harness.publisher.release(6)
    await run_to_end(run)

    sent = harness.publisher.sent
    assert [m.headers[h.REPLAYED_EVENT_ID] for m in sent] == [
        e.event_id for e in sorted(harness.events.events, key=lambda e: e.cursor)
    ]
    assert harness.events.pages == 4  # three full pages read ahead, then the empty one
    assert (await harness.stored(session.id)).published == 6


async def test_a_page_read_ahead_past_the_cap_is_never_read(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle(), *make_lifecycle())
    session = harness.new_session(max_events=2)  # one page of 2: nothing to read ahead
    await run_to_end(asyncio.create_task(harness.runner(session).run()))

    assert harness.events.pages == 1
    assert len(harness.publisher.sent) == 2


async def test_the_cap_holds_the_first_events_in_order(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    events = make_lifecycle() + make_lifecycle(start=datetime(2026, 1, 2, tzinfo=UTC))
    harness.events.add(*events)
    session = harness.new_session(max_events=3)
    await run_to_end(asyncio.create_task(harness.runner(session).run()))

    stored = await harness.stored(session.id)
    assert stored.status is S.COMPLETED
    assert stored.published == 3
    assert [m.event.event_id for m in harness.publisher.sent] == [e.event_id for e in events[:3]]


async def test_an_unreplayable_stored_event_is_skipped_and_the_rest_goes_on(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    stored_events = harness.events.add(*make_lifecycle())
    middle = stored_events[1]
    harness.events.events[1] = dataclasses.replace(
        middle, document={**middle.document, "event_type": "execution.exploded"}
    )
    session = harness.new_session()
    await run_to_end(asyncio.create_task(harness.runner(session).run()))

    stored = await harness.stored(session.id)
    assert (stored.status, stored.published, stored.skipped) == (S.COMPLETED, 2, 1)
    assert stored.last_error is not None
    assert "execution.exploded" in stored.last_error


async def test_a_publish_that_fails_once_is_retried(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle())
    harness.publisher.failures = 1
    session = harness.new_session()
    await run_to_end(asyncio.create_task(harness.runner(session).run()))
    stored = await harness.stored(session.id)
    assert (stored.status, stored.published, stored.failed) == (S.COMPLETED, 3, 0)
    assert harness.publisher.attempts == 4


async def test_events_in_a_row_not_acknowledged_fail_the_session(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle(), *make_lifecycle())
    harness.publisher.failures = 100
    session = harness.new_session()
    await run_to_end(asyncio.create_task(harness.runner(session).run()))

    stored = await harness.stored(session.id)
    assert stored.status is S.FAILED
    assert stored.failed == 2  # max_consecutive_failures
    assert stored.published == 0
    assert stored.last_error is not None
    assert "in a row were not acknowledged" in stored.last_error
    (root,) = harness.spans(SESSION_SPAN)
    assert root.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize("harness", [1], indirect=True, ids=["one-by-one"])
async def test_pause_takes_effect_before_the_next_message_and_resume_continues(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle())
    harness.publisher.hold()
    session = harness.new_session()
    runner = harness.runner(session)
    task = asyncio.create_task(runner.run())
    await wait_for(lambda: harness.publisher.attempts == 1)  # blocked in the first publish

    await harness.controls.request(session.id, S.PAUSED)
    runner.poke()
    harness.publisher.release()
    paused = await harness.wait_status(session.id, S.PAUSED)
    assert paused.published == 1
    assert harness.publisher.attempts == 1  # nothing more went out while paused

    await harness.controls.request(session.id, S.RUNNING)
    runner.poke()
    await harness.wait_status(session.id, S.RUNNING)
    harness.publisher.release(2)
    await run_to_end(task)
    stored = await harness.stored(session.id)
    assert (stored.status, stored.published) == (S.COMPLETED, 3)
    (root,) = harness.spans(SESSION_SPAN)
    assert [e.name for e in root.events] == ["paused", "resumed"]


@pytest.mark.parametrize("harness", [1], indirect=True, ids=["one-by-one"])
async def test_cancel_takes_effect_before_the_next_message(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle())
    harness.publisher.hold()
    session = harness.new_session()
    runner = harness.runner(session)
    task = asyncio.create_task(runner.run())
    await wait_for(lambda: harness.publisher.attempts == 1)
    await harness.controls.request(session.id, S.CANCELLED)
    runner.poke()
    harness.publisher.release()
    await run_to_end(task)
    stored = await harness.stored(session.id)
    assert (stored.status, stored.published) == (S.CANCELLED, 1)
    assert stored.owner is None


async def test_a_request_from_another_instance_is_read_from_the_store(
    harness_factory: Callable[..., Harness], make_lifecycle: Lifecycle
) -> None:
    # Polling before every message (the default polls every control_poll_s).
    harness = harness_factory(dataclasses.replace(FAST_POLICY, control_poll_s=0.0))
    harness.events.add(*make_lifecycle())
    harness.publisher.hold()
    session = harness.new_session()
    task = asyncio.create_task(harness.runner(session).run())
    await wait_for(lambda: harness.publisher.attempts == 1)
    await harness.controls.request(session.id, S.CANCELLED)  # no poke: only the store
    harness.publisher.release()
    await run_to_end(task)
    assert (await harness.stored(session.id)).status is S.CANCELLED


async def test_pacing_spaces_events_by_the_factor(
    harness_factory: Callable[..., Harness], make_lifecycle: Lifecycle
) -> None:
    harness = harness_factory()
    harness.events.add(*make_lifecycle(gap_s=1.0))
    session = harness.new_session(speed=0.1)  # 1 s apart → 0.1 s
    started = time.monotonic()
    await run_to_end(asyncio.create_task(harness.runner(session).run()))
    elapsed = time.monotonic() - started
    assert 0.18 <= elapsed < 1.5
    assert (await harness.stored(session.id)).published == 3


async def test_a_long_wait_is_capped_and_cancel_interrupts_it(
    harness_factory: Callable[..., Harness], make_lifecycle: Lifecycle
) -> None:
    harness = harness_factory()
    harness.events.add(*make_lifecycle(gap_s=3600))  # an hour apart, capped at max_wait_s 5
    session = harness.new_session(speed=1.0)
    runner = harness.runner(session)
    task = asyncio.create_task(runner.run())
    await wait_for(lambda: len(harness.publisher.sent) == 1)
    started = time.monotonic()
    await harness.controls.request(session.id, S.CANCELLED)
    runner.poke()
    await run_to_end(task, timeout_s=2.0)
    assert time.monotonic() - started < 1.0
    stored = await harness.stored(session.id)
    assert (stored.status, stored.published) == (S.CANCELLED, 1)


@pytest.mark.parametrize("harness", [1], indirect=True, ids=["one-by-one"])
async def test_stop_releases_at_the_cursor_and_another_run_continues_without_repeats(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    events = make_lifecycle() + make_lifecycle(start=datetime(2026, 1, 2, tzinfo=UTC))
    harness.events.add(*events)
    harness.publisher.hold()
    session = harness.new_session()
    runner = harness.runner(session)
    task = asyncio.create_task(runner.run())
    await wait_for(lambda: harness.publisher.attempts == 1)
    harness.publisher.release()
    await wait_for(lambda: harness.publisher.attempts == 2)  # the second is in flight
    runner.stop()
    harness.publisher.release()
    await run_to_end(task)
    released = await harness.stored(session.id)
    assert released.status is S.RUNNING
    assert released.owner is None
    assert released.published == 2
    assert released.cursor is not None
    assert released.cursor.event_id == str(events[1].event_id)

    harness.publisher.gate = None
    assert await harness.pool.recover() == 1
    done = await harness.wait_status(session.id, S.COMPLETED)
    assert done.published == 6
    assert [m.event.event_id for m in harness.publisher.sent] == [e.event_id for e in events]
    roots = harness.spans(SESSION_SPAN)
    assert len(roots) == 2
    assert roots[1].attributes is not None
    assert roots[1].attributes["replay.resumed_from_cursor"] is True


async def test_only_one_pool_adopts_an_orphan_and_live_leases_are_left_alone(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle())
    orphan = harness.new_session()
    harness.sessions.docs[orphan.id].owner = "dead-instance"
    harness.sessions.docs[orphan.id].lease_until = datetime.now(UTC) - timedelta(seconds=1)
    alive = harness.new_session()
    harness.sessions.docs[alive.id].owner = "live-instance"

    other = SessionPool(
        sessions=harness.sessions,
        runner_factory=harness.runner,
        instance_id="replay-b",
        lease_s=3.0,
        recovery_interval_s=1.0,
        clock=lambda: datetime.now(UTC),
    )
    adopted = await asyncio.gather(harness.pool.recover(), other.recover())
    assert sorted(adopted) == [0, 1]
    await harness.wait_status(orphan.id, S.COMPLETED)
    assert (await harness.stored(alive.id)).status is S.CREATED
    other.stop()
    await other.drain(1.0)


@pytest.mark.parametrize("harness", [1], indirect=True, ids=["one-by-one"])
async def test_a_session_whose_ownership_was_taken_stops_without_writing(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle())
    harness.publisher.hold()
    session = harness.new_session()
    task = asyncio.create_task(harness.runner(session).run())
    await wait_for(lambda: harness.publisher.attempts == 1)
    harness.sessions.docs[session.id].owner = "replay-b"
    harness.publisher.release(3)
    await run_to_end(task)
    assert harness.sessions.docs[session.id].owner == "replay-b"
    assert harness.sessions.docs[session.id].status is not S.COMPLETED


async def test_sessions_beyond_the_slots_wait_created_and_can_be_cancelled_there(
    harness_factory: Callable[..., Harness], make_lifecycle: Lifecycle
) -> None:
    harness = harness_factory(slots=1)
    harness.events.add(*make_lifecycle())
    harness.publisher.hold()
    first, second = harness.new_session(), harness.new_session()
    first_task = asyncio.create_task(harness.runner(first).run())
    await wait_for(lambda: harness.publisher.attempts == 1)
    second_runner = harness.runner(second)
    second_task = asyncio.create_task(second_runner.run())
    created_at_first = harness.sessions.docs[second.id].updated_at
    # Its lease is renewed while it waits: it is alive, and still waiting for the slot.
    await wait_for(lambda: harness.sessions.docs[second.id].updated_at > created_at_first)
    assert (await harness.stored(second.id)).status is S.CREATED
    await harness.controls.request(second.id, S.CANCELLED)
    second_runner.poke()
    await run_to_end(second_task)
    assert (await harness.stored(second.id)).status is S.CANCELLED
    harness.publisher.release(3)
    await run_to_end(first_task)
    assert (await harness.stored(first.id)).status is S.COMPLETED
    assert harness.deps.slots.in_use == 0


def test_the_save_interval_keeps_the_lease_alive() -> None:
    assert RunPolicy(progress_interval_s=60, lease_s=15).save_interval_s == 5
    assert math.isclose(RunPolicy(progress_interval_s=1, lease_s=15).save_interval_s, 1)


async def test_a_bug_fails_the_session_and_its_span(
    harness: Harness, make_lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.events.add(*make_lifecycle())

    async def broken(*_: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(harness.events, "page", broken)
    session = harness.new_session()
    await run_to_end(asyncio.create_task(harness.runner(session).run()))
    stored = await harness.stored(session.id)
    assert stored.status is S.FAILED
    assert stored.last_error == "RuntimeError: boom"
    assert harness.deps.slots.in_use == 0
    (root,) = harness.spans(SESSION_SPAN)
    assert root.status.status_code is StatusCode.ERROR


async def test_a_store_outage_leaves_the_session_to_be_adopted_later(
    harness: Harness, make_lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.events.add(*make_lifecycle())

    async def down(*_: object) -> list[object]:
        raise StoreUnavailableError("event store unavailable: down")

    monkeypatch.setattr(harness.events, "page", down)
    session = harness.new_session()
    await run_to_end(asyncio.create_task(harness.runner(session).run()))
    stored = await harness.stored(session.id)
    assert stored.status is S.RUNNING  # not ended: resumed once its lease runs out
    assert stored.owner == "replay-a"
    assert harness.deps.slots.in_use == 0


async def test_the_count_fills_in_matched_beside_the_replay(
    harness: Harness, make_lifecycle: Lifecycle
) -> None:
    harness.events.add(*make_lifecycle(), *make_lifecycle())  # 6 events
    harness.events.count_gate.clear()
    harness.publisher.hold()
    session = harness.new_session(max_events=4)
    task = asyncio.create_task(harness.runner(session).run())
    await wait_for(lambda: harness.events.counts == 1)
    stored = await harness.stored(session.id)
    assert (stored.status, stored.matched, stored.capped) == (S.RUNNING, None, None)
    harness.events.count_gate.set()  # the count ends while the first publish is in flight
    await wait_for(lambda: session.matched == 6)
    # The runner is the one writer of its session: the next progress write after the message
    # in flight carries the count, while the session is still running.
    harness.publisher.release(1)
    await wait_for(lambda: len(harness.publisher.sent) == 1)
    await asyncio.sleep(harness.deps.policy.save_interval_s)  # the progress interval passes
    harness.publisher.release(1)
    await wait_for(lambda: len(harness.publisher.sent) == 2)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while (await harness.stored(session.id)).matched != 6:
        assert loop.time() < deadline, "the count was not persisted while running"
        await asyncio.sleep(0.01)
    assert (await harness.stored(session.id)).status is S.RUNNING
    harness.publisher.release(2)
    await run_to_end(task)
    stored = await harness.stored(session.id)
    assert (stored.status, stored.published, stored.planned, stored.capped) == (
        S.COMPLETED,
        4,
        4,
        True,
    )
    [span] = harness.spans(SESSION_SPAN)
    assert span.attributes is not None
    assert span.attributes["replay.matched"] == 6


async def test_a_count_the_store_refuses_leaves_matched_unknown_and_the_replay_goes_on(
    harness: Harness, make_lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.events.add(*make_lifecycle())

    async def unavailable(filters: ReplayFilters) -> int:
        raise StoreUnavailableError("mongo down")

    monkeypatch.setattr(harness.events, "count", unavailable)
    session = harness.new_session(max_events=2)
    await run_to_end(asyncio.create_task(harness.runner(session).run()))
    stored = await harness.stored(session.id)
    assert (stored.status, stored.published) == (S.COMPLETED, 2)
    assert (stored.matched, stored.capped, stored.planned) == (None, None, None)


# -- at speed max, a window of events awaiting their acknowledgement ---------------------------


@pytest.fixture
async def windowed(harness_factory: Callable[..., Harness]) -> AsyncIterator[Harness]:
    """A window of 4 over pages of 10 (a window drains at the end of its page)."""
    built = harness_factory(dataclasses.replace(FAST_POLICY, batch_size=10, publish_window=4))
    try:
        yield built
    finally:
        built.pool.stop()
        await built.pool.drain(2.0)


async def _window_full(
    harness: Harness, make_lifecycle: Lifecycle
) -> tuple[list[EventEnvelope], ReplaySession, SessionRunner, asyncio.Task[None]]:
    """Six events, the publisher held, a run started: back once its window of 4 is handed over
    and none of them acknowledged."""
    events = make_lifecycle() + make_lifecycle(start=datetime(2026, 1, 2, tzinfo=UTC))
    harness.events.add(*events)
    harness.publisher.hold()
    session = harness.new_session()
    runner = harness.runner(session)
    run = asyncio.create_task(runner.run())
    await wait_for(lambda: harness.publisher.attempts == 4)
    return events, session, runner, run


async def test_a_window_hands_events_over_in_order_before_any_is_acknowledged(
    windowed: Harness, make_lifecycle: Lifecycle
) -> None:
    harness = windowed
    events, session, _, run = await _window_full(harness, make_lifecycle)  # none acked yet
    assert (await harness.stored(session.id)).published == 0
    assert [m.event.event_id for m in harness.publisher.handed] == [e.event_id for e in events[:4]]
    harness.publisher.release(6)
    await run_to_end(run)

    stored = await harness.stored(session.id)
    assert (stored.status, stored.published) == (S.COMPLETED, 6)
    assert [m.event.event_id for m in harness.publisher.sent] == [e.event_id for e in events]
    assert stored.cursor is not None
    assert stored.cursor.event_id == str(events[-1].event_id)


async def test_a_paced_session_goes_one_at_a_time_whatever_the_window(
    windowed: Harness, make_lifecycle: Lifecycle
) -> None:
    harness = windowed
    harness.events.add(*make_lifecycle())
    harness.publisher.hold()
    session = harness.new_session(speed=0.001)
    run = asyncio.create_task(harness.runner(session).run())

    await wait_for(lambda: harness.publisher.attempts == 1)
    for _ in range(50):  # loop turns in which a window would hand the next ones over
        await asyncio.sleep(0)
    assert harness.publisher.attempts == 1
    harness.publisher.release(3)
    await run_to_end(run)
    assert (await harness.stored(session.id)).published == 3


async def test_a_failed_first_attempt_in_a_window_is_retried_and_counted_once(
    windowed: Harness, make_lifecycle: Lifecycle
) -> None:
    harness = windowed
    events = make_lifecycle()
    harness.events.add(*events)
    harness.publisher.failures = 1  # the first event's first attempt
    session = harness.new_session()
    await run_to_end(asyncio.create_task(harness.runner(session).run()))

    stored = await harness.stored(session.id)
    assert (stored.status, stored.published, stored.failed) == (S.COMPLETED, 3, 0)
    sent = [m.event.event_id for m in harness.publisher.sent]
    assert sorted(sent) == sorted(e.event_id for e in events)  # each once
    assert harness.publisher.attempts == 4


async def test_pause_in_a_window_settles_what_is_in_flight_and_hands_over_nothing_more(
    windowed: Harness, make_lifecycle: Lifecycle
) -> None:
    harness = windowed
    events, session, runner, run = await _window_full(harness, make_lifecycle)

    await harness.controls.request(session.id, S.PAUSED)
    runner.poke()
    harness.publisher.release(4)
    paused = await harness.wait_status(session.id, S.PAUSED)
    assert paused.published == 4
    assert paused.cursor is not None
    assert paused.cursor.event_id == str(events[3].event_id)
    assert harness.publisher.attempts == 4

    await harness.controls.request(session.id, S.RUNNING)
    runner.poke()
    harness.publisher.release(2)
    await run_to_end(run)
    assert (await harness.stored(session.id)).published == 6
    assert [m.event.event_id for m in harness.publisher.sent] == [e.event_id for e in events]


async def test_a_stop_in_a_window_counts_what_was_acknowledged_and_the_next_run_goes_on(
    windowed: Harness, make_lifecycle: Lifecycle
) -> None:
    harness = windowed
    events, session, runner, run = await _window_full(harness, make_lifecycle)

    runner.stop()
    harness.publisher.release(4)  # the four in flight are acknowledged while it stops
    await run_to_end(run)
    released = await harness.stored(session.id)
    assert (released.status, released.owner, released.published) == (S.RUNNING, None, 4)
    assert released.cursor is not None
    assert released.cursor.event_id == str(events[3].event_id)

    harness.publisher.gate = None
    assert await harness.pool.recover() == 1
    done = await harness.wait_status(session.id, S.COMPLETED)
    assert done.published == 6
    assert [m.event.event_id for m in harness.publisher.sent] == [e.event_id for e in events]


async def test_a_cancel_in_a_window_counts_only_what_was_acknowledged(
    windowed: Harness, make_lifecycle: Lifecycle
) -> None:
    harness = windowed
    events, session, runner, run = await _window_full(harness, make_lifecycle)

    await harness.controls.request(session.id, S.CANCELLED)
    runner.poke()
    harness.publisher.release(2)  # two acknowledged; the other two never are
    await wait_for(lambda: len(harness.publisher.sent) == 2)
    harness.publisher.failures = 2
    harness.publisher.release(2)
    await run_to_end(run)
    stored = await harness.stored(session.id)
    assert (stored.status, stored.published, stored.failed) == (S.CANCELLED, 2, 0)
    assert stored.cursor is not None
    assert stored.cursor.event_id == str(events[1].event_id)
    assert harness.publisher.attempts == 4
