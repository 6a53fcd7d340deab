"""No route handler or dependency of event-replay runs in FastAPI's thread pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.route_callables import threadpool_callables

if TYPE_CHECKING:
    from conftest import Harness


def test_every_handler_and_dependency_runs_on_the_event_loop(
    harness_factory: Callable[..., Harness],
) -> None:
    assert threadpool_callables(harness_factory().app) == []
