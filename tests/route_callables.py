"""What FastAPI would run in its thread pool: every route handler and dependency of an app
that is a plain ``def``. A thread hop per call (and a worker thread contending for the GIL)
for work that never blocks; the services keep them all ``async``."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute


def _runs_on_the_loop(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    if inspect.isfunction(call) or inspect.ismethod(call):
        return False
    # An instance with an async __call__ (HTTPBearer).
    dunder = type(call).__call__
    return inspect.iscoroutinefunction(dunder) or inspect.isasyncgenfunction(dunder)


def threadpool_callables(app: FastAPI) -> list[str]:
    """``"<route path>: <callable>"`` for each sync handler or dependency, sorted. Routers
    included in the app are walked too, with the dependencies given at inclusion (FastAPI
    keeps an included router as one entry that holds the original router)."""
    found: set[str] = set()

    def note(path: str, call: Any) -> None:
        if call is not None and not _runs_on_the_loop(call):
            found.add(f"{path}: {getattr(call, '__qualname__', repr(call))}")

    def walk(path: str, dependant: Dependant) -> None:
        note(path, dependant.call)
        for sub in dependant.dependencies:
            walk(path, sub)

    def walk_routes(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                walk(prefix + route.path, route.dependant)
            included = getattr(route, "original_router", None)
            if included is not None:
                context = getattr(route, "include_context", None)
                inner = prefix + str(getattr(context, "prefix", ""))
                for depends in getattr(context, "dependencies", ()):
                    note(inner, depends.dependency)
                for depends in getattr(included, "dependencies", ()):
                    note(inner, depends.dependency)
                walk_routes(included.routes, inner)

    walk_routes(list(app.routes), "")
    return sorted(found)
