"""A service's lifespan: every resource registers its close as it is opened; shutdown runs the
closes in reverse and one that raises never skips the others.

The composition root writes one ``open`` function. It starts things in order and, right after
each, registers how to undo it on the ``ResourceStack`` it is given; the telemetry handle is
registered first, so its flush runs last, after everything that could still make a span or a
log line. The stack is an ``AsyncExitStack``: when ``open`` raises half-way (a start that
fails), the closes registered so far run before the error reaches the server. Once ``open`` has
returned, what start-up built is frozen out of the garbage collector's scans and the collector's
young threshold is set (``heap.py``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from integr8scode_telemetry.background import untraced
from integr8scode_telemetry.heap import HeapSettings, freeze_start_up_heap

log = logging.getLogger(__name__)

Close = Callable[[], Awaitable[object] | object]
Lifespan = Callable[[Any], AbstractAsyncContextManager[None]]


class ResourceStack:
    """The closes of a starting service, run last-registered first by ``service_lifespan``."""

    def __init__(self, service: str, stack: AsyncExitStack) -> None:
        self._service = service
        self._stack = stack

    def close_with(self, name: str, close: Close, *, untraced_close: bool = False) -> None:
        """Register ``close`` (sync or async) under ``name``, to run at shutdown. A close that
        raises is logged with its stack trace and the next one runs. ``untraced_close`` runs it
        with client instrumentation suppressed (a driver's goodbye is not a trace)."""

        async def run() -> None:
            try:
                if untraced_close:
                    with untraced():
                        await _call(close)
                else:
                    await _call(close)
            except Exception:  # shutdown's outermost edge: log it, close the rest
                log.exception("%s: closing %s failed; closing the rest", self._service, name)

        self._stack.push_async_callback(run)


async def _call(close: Close) -> None:
    result = close()
    if inspect.isawaitable(result):
        await result


def service_lifespan(
    service: str,
    open_resources: Callable[[ResourceStack], Awaitable[None]],
    *,
    heap: HeapSettings | None = None,
) -> Lifespan:
    """A FastAPI ``lifespan`` that runs ``open_resources(stack)`` at start-up and, at shutdown
    (or when ``open_resources`` raises), every close it registered, in reverse order. Between
    the two the start-up heap is frozen, and with ``heap`` the collector's young threshold is
    set (``heap.py``)."""

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await open_resources(ResourceStack(service, stack))
            freeze_start_up_heap(heap.gc_young_threshold if heap is not None else None)
            yield

    return lifespan
