"""Mongo client spans in the current database semantic conventions.

The PyMongo instrumentation names a span ``<database>.<command>`` and, unless told otherwise,
sets the old attributes (``db.mongodb.collection``, ``net.peer.*``). ``init_telemetry`` opts in
to the stable ones (``OTEL_SEMCONV_STABILITY_OPT_IN=database``: ``db.system.name``,
``db.namespace``, ``db.collection.name``, ``server.address``/``server.port``) and installs the
hook below, which adds ``db.operation.name`` and names the span ``<operation> <collection>``
("find sagas"), as the conventions ask. Query text is never captured (filters hold user data).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span

DB_OPERATION_NAME = "db.operation.name"


def mongo_span_name(command_name: str, command: Any) -> str:
    """``<operation> <collection>``, or just the operation for commands without one."""
    collection = command.get(command_name) if hasattr(command, "get") else None
    if isinstance(collection, str) and collection:
        return f"{command_name} {collection}"
    return command_name


def name_mongo_span(span: Span, event: Any) -> None:
    """PyMongo instrumentation ``request_hook`` (``event``: a ``CommandStartedEvent``)."""
    if not span.is_recording():
        return
    span.set_attribute(DB_OPERATION_NAME, event.command_name)
    span.update_name(mongo_span_name(event.command_name, event.command))
