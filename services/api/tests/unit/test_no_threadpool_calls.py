"""No route handler or dependency of the api runs in FastAPI's thread pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.route_callables import threadpool_callables

if TYPE_CHECKING:
    from conftest import Harness


def test_every_handler_and_dependency_runs_on_the_event_loop(harness: Harness) -> None:
    assert threadpool_callables(harness.app) == []
