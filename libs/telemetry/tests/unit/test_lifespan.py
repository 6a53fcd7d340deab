"""``service_lifespan``: closes run in reverse registration order; a raising close is logged and
never skips the others (the telemetry flush registered first runs last); a failing start
closes what was opened before the error escapes."""

from __future__ import annotations

import gc
import logging

import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from pydantic import ValidationError

from integr8scode_telemetry import HeapSettings, ResourceStack, service_lifespan


class BoomError(RuntimeError):
    pass


async def test_closes_run_last_opened_first_after_the_app_served() -> None:
    events: list[str] = []

    async def open_resources(stack: ResourceStack) -> None:
        events.append("open telemetry")
        stack.close_with("telemetry", lambda: events.append("flush telemetry"))
        events.append("open mongo")

        async def close_mongo() -> None:
            events.append("close mongo")

        stack.close_with("mongo", close_mongo)
        events.append("start workers")
        stack.close_with("workers", lambda: events.append("stop workers"))

    lifespan = service_lifespan("svc", open_resources)
    async with lifespan(FastAPI()):
        events.append("serving")

    assert events == [
        "open telemetry",
        "open mongo",
        "start workers",
        "serving",
        "stop workers",
        "close mongo",
        "flush telemetry",
    ]


async def test_a_raising_close_is_logged_and_skips_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []

    async def failing_async() -> None:
        raise BoomError("broker gone")

    def failing_sync() -> None:
        raise BoomError("socket reset")

    async def open_resources(stack: ResourceStack) -> None:
        stack.close_with("telemetry", lambda: closed.append("telemetry"))
        stack.close_with("mongo", failing_sync)
        stack.close_with("redis", lambda: closed.append("redis"))
        stack.close_with("publisher", failing_async)
        stack.close_with("workers", lambda: closed.append("workers"))

    with caplog.at_level(logging.ERROR, logger="integr8scode_telemetry.lifespan"):
        async with service_lifespan("svc", open_resources)(FastAPI()):
            pass

    assert closed == ["workers", "redis", "telemetry"]
    failures = [r for r in caplog.records if "closing" in r.getMessage()]
    assert [r.getMessage() for r in failures] == [
        "svc: closing publisher failed; closing the rest",
        "svc: closing mongo failed; closing the rest",
    ]
    assert all(r.exc_info is not None and r.exc_info[0] is BoomError for r in failures)


async def test_a_failing_start_closes_what_was_opened_and_raises() -> None:
    closed: list[str] = []
    served = False

    async def open_resources(stack: ResourceStack) -> None:
        stack.close_with("telemetry", lambda: closed.append("telemetry"))
        stack.close_with("mongo", lambda: closed.append("mongo"))
        raise BoomError("slack session refused")

    with pytest.raises(BoomError, match="slack session refused"):
        async with service_lifespan("svc", open_resources)(FastAPI()):
            served = True

    assert not served
    assert closed == ["mongo", "telemetry"]


async def test_an_untraced_close_runs_with_instrumentation_suppressed() -> None:
    seen: dict[str, bool] = {}

    async def open_resources(stack: ResourceStack) -> None:
        stack.close_with(
            "mongo",
            lambda: seen.__setitem__("mongo", is_instrumentation_enabled()),
            untraced_close=True,
        )
        stack.close_with(
            "publisher", lambda: seen.__setitem__("publisher", is_instrumentation_enabled())
        )

    async with service_lifespan("svc", open_resources)(FastAPI()):
        pass

    assert seen == {"publisher": True, "mongo": False}
    # Suppression ended with the close: the serving context was never affected.
    assert is_instrumentation_enabled()


async def test_what_start_up_built_is_frozen_out_of_the_collector_once_it_served() -> None:
    class Client:  # a long-lived object of start-up, in a reference cycle like many are
        def __init__(self) -> None:
            self.me = self

    kept: list[Client] = []

    async def open_resources(stack: ResourceStack) -> None:
        kept.append(Client())
        assert any(obj is kept[0] for obj in gc.get_objects())  # not frozen yet: scanned
        stack.close_with("client", kept.clear)

    gc.unfreeze()
    lifespan = service_lifespan("svc", open_resources)
    try:
        async with lifespan(FastAPI()):
            assert gc.get_freeze_count() > 0
            assert not any(obj is kept[0] for obj in gc.get_objects())
    finally:
        gc.unfreeze()


async def test_the_young_threshold_is_set_once_start_up_is_frozen() -> None:
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []

    async def open_resources(stack: ResourceStack) -> None:
        seen.append(gc.get_threshold())  # start-up runs with the interpreter's setting

    heap = HeapSettings(gc_young_threshold=12_345)
    try:
        async with service_lifespan("svc", open_resources, heap=heap)(FastAPI()):
            assert gc.get_threshold() == (12_345, before[1], before[2])
        assert seen == [before]
        gc.set_threshold(*before)
        async with service_lifespan("svc", open_resources)(FastAPI()):
            assert gc.get_threshold() == before  # without settings: the interpreter's
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_the_young_threshold_is_read_from_the_environment_and_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INTEGR8SCODE_GC_YOUNG_THRESHOLD", raising=False)
    assert HeapSettings().gc_young_threshold == 10_000
    monkeypatch.setenv("INTEGR8SCODE_GC_YOUNG_THRESHOLD", "2500")
    assert HeapSettings().gc_young_threshold == 2_500
    monkeypatch.setenv("INTEGR8SCODE_GC_YOUNG_THRESHOLD", "0")  # 0 would switch collection off
    with pytest.raises(ValidationError, match="greater than or equal to 100"):
        HeapSettings()
