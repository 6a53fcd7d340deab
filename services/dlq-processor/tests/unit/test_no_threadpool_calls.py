"""No route handler or dependency of the dlq-processor runs in FastAPI's thread pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from tests.route_callables import threadpool_callables

if TYPE_CHECKING:
    from conftest import AdminHarness


def test_every_handler_and_dependency_runs_on_the_event_loop(admin: AdminHarness) -> None:
    app = admin.client.app
    assert isinstance(app, FastAPI)
    assert threadpool_callables(app) == []
