"""Mongo client spans in the current database semantic conventions, one per command.

``MongoCommandSpans`` is a PyMongo command listener: a span named ``<operation> <collection>``
("find sagas") with ``db.system.name``, ``db.namespace``, ``db.collection.name``,
``db.operation.name``, ``server.address`` and ``server.port``; a failed command sets the span's
status to error with the server's message and ``error.type`` to its code name. The query itself
is never captured: filters hold user data.

It replaces the OpenTelemetry PyMongo instrumentation (the same spans, less its ``db.query.text``,
which held only the operation's name again) because that one cost about 75 µs of CPU per command
in a service, about 1.5 ms per execution: it named the span twice, built the attributes through
a dozen semantic-convention helpers and set them one call at a time. Here a span's name and
attributes are worked out once per (database, operation, collection, server), and the span is a
lean one (libs/spans: the SDK's span without ``Tracer.start_span``'s containers). About 30 µs
less per command with the SDK's span, more with the lean one (docs/decisions.md, issue 13).

Commands run under ``untraced()`` (``suppress_instrumentation``) make no span. PyMongo has no way
to remove a listener, so the process registers one (``instrument``) and ``uninstrument`` turns it
off; a later ``instrument`` turns it on again with the new tracer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from pymongo import monitoring

from integr8scode_spans import start_span

DB_OPERATION_NAME = "db.operation.name"
# Distinct (database, operation, collection, server) shapes kept at most; a process has a few
# dozen. Past the bound the cache starts again (tests make databases by the thousand).
_SHAPES_KEPT = 4_096


def mongo_span_name(command_name: str, command: Any) -> str:
    """``<operation> <collection>``, or just the operation for commands without one."""
    collection = _collection(command_name, command)
    return f"{command_name} {collection}" if collection else command_name


def _collection(command_name: str, command: Any) -> str | None:
    collection = command.get(command_name) if hasattr(command, "get") else None
    return collection if isinstance(collection, str) and collection else None


def command_attributes(
    database: str,
    command_name: str,
    collection: str | None,
    server: tuple[str, int | None] | None,
) -> dict[str, Any]:
    """The attributes of one command's span (stable database conventions)."""
    attributes: dict[str, Any] = {
        "db.system.name": "mongodb",
        "db.namespace": database,
        DB_OPERATION_NAME: command_name,
    }
    if collection:
        attributes["db.collection.name"] = collection
    if server is not None:
        host, port = server
        attributes["server.address"] = host
        if port is not None:  # None: a Unix socket, its path is the address
            attributes["server.port"] = port
    return attributes


class MongoCommandSpans(monitoring.CommandListener):
    """A client span per Mongo command (module docstring). Register it with
    ``pymongo.monitoring.register`` or a client's ``event_listeners``."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.enabled = True
        self._open: dict[tuple[int, Any], Span] = {}
        self._shapes: dict[tuple[str, str, str | None, Any], tuple[str, Mapping[str, Any]]] = {}

    def _shape(self, event: monitoring.CommandStartedEvent) -> tuple[str, Mapping[str, Any]]:
        command_name, server = event.command_name, event.connection_id
        collection = _collection(command_name, event.command)
        key = (event.database_name, command_name, collection, server)
        shape = self._shapes.get(key)
        if shape is None:
            if len(self._shapes) >= _SHAPES_KEPT:
                self._shapes.clear()
            shape = (
                mongo_span_name(command_name, event.command),
                command_attributes(event.database_name, command_name, collection, server),
            )
            self._shapes[key] = shape
        return shape

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.enabled or not is_instrumentation_enabled():
            return
        name, attributes = self._shape(event)
        span = start_span(self.tracer, name, kind=SpanKind.CLIENT, attributes=attributes)
        self._open[event.request_id, event.connection_id] = span

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        span = self._open.pop((event.request_id, event.connection_id), None)
        if span is not None:
            span.end()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        span = self._open.pop((event.request_id, event.connection_id), None)
        if span is None:
            return
        if span.is_recording():
            failure = event.failure
            span.set_status(Status(StatusCode.ERROR, str(failure.get("errmsg", "unknown error"))))
            span.set_attribute("error.type", str(failure.get("codeName", "UnknownError")))
        span.end()


class MongoInstrumentation:
    """The process's one registered ``MongoCommandSpans`` (PyMongo's listeners are global and
    can't be removed): ``instrument`` registers it or turns it back on with a new tracer,
    ``uninstrument`` turns it off."""

    _listener: MongoCommandSpans | None = None

    def instrument(self, tracer: Tracer) -> MongoCommandSpans:
        listener = MongoInstrumentation._listener
        if listener is None:
            listener = MongoCommandSpans(tracer)
            monitoring.register(listener)
            MongoInstrumentation._listener = listener
        listener.tracer = tracer
        listener.enabled = True
        return listener

    def uninstrument(self) -> None:
        if MongoInstrumentation._listener is not None:
            MongoInstrumentation._listener.enabled = False

    @property
    def is_instrumented(self) -> bool:
        listener = MongoInstrumentation._listener
        return listener is not None and listener.enabled
