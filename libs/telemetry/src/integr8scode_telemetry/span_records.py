"""A finished span as a plain record: the form spans take between the process that made them
and the encoder (in this process, or in the export child of ``span_pipe.py``).

A record is a tuple of ints, strings, ``None``, bools and the span's own attribute dict, so a
batch of them is serialised by one ``marshal.dumps`` call (C, ~0.7 µs a span) and holds no
reference to the span: the span object is freed when its owner drops it, instead of waiting
in a queue for the garbage collector to scan it. Resources and instrumentation scopes repeat
in every span; a record names them by a small index, and each is described once, by a
*definition* handed over before the first record that uses it.

Record layout (``RECORD_FIELDS``)::

    trace_id, span_id, trace_state ("k=v,k=v" or None), parent_span_id (or None),
    parent_is_remote, name, kind (SpanKind value), start_ns, end_ns, attributes (dict or None),
    dropped_attributes, events (tuple or None), dropped_events, links (tuple or None),
    dropped_links, status_code (StatusCode value), status_description (or None),
    resource index, scope index

an event is ``(timestamp_ns, name, attributes, dropped_attributes)``, a link
``(trace_id, span_id, is_remote, attributes, dropped_attributes)``; definitions are
``("resource", index, attributes, schema_url)`` and
``("scope", index, name, version, schema_url, attributes)``.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

RECORD_FIELDS = (
    "trace_id",
    "span_id",
    "trace_state",
    "parent_span_id",
    "parent_is_remote",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "attributes",
    "dropped_attributes",
    "events",
    "dropped_events",
    "links",
    "dropped_links",
    "status_code",
    "status_description",
    "resource",
    "scope",
)

Record = tuple[Any, ...]
Definition = tuple[Any, ...]


def plain_attributes(span: ReadableSpan) -> Mapping[str, Any] | None:
    """A finished span's attributes as the plain dict they are kept in, when they are (the
    SDK's span keeps one inside its locked mapping, libs/events' lean span keeps one itself;
    the public view is a read-only proxy, read key by key in Python); else that public view."""
    kept = getattr(span, "_attributes", None)
    if type(kept) is dict:
        return kept
    inner = getattr(kept, "_dict", None)
    return inner if type(inner) is dict else span.attributes


def _as_dict(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not attributes:
        return None
    inner = getattr(attributes, "_dict", None)  # BoundedAttributes
    return dict(inner if type(inner) is dict else attributes)


def plain_value(value: Any) -> Any:  # noqa: PLR0911 - one return per value type
    """``value`` with the exact built-in types ``marshal`` takes (a ``StrEnum`` member becomes
    its string, an ``IntEnum`` its int, a list a tuple), encoding to the same OTLP value."""
    if value is None or type(value) in {str, int, float, bool, bytes}:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return tuple(plain_value(v) for v in value)
    return value  # the encoder names it: not an attribute value


def plain_record(record: Record) -> Record:
    """``record`` with every attribute value made ``marshal``-able (``plain_value``); for the
    rare batch that ``marshal`` refuses as it is."""
    out = list(record)
    out[9] = plain_value(record[9]) if record[9] else None
    if record[11]:
        out[11] = tuple((t, n, plain_value(a) if a else None, d) for t, n, a, d in record[11])
    if record[13]:
        out[13] = tuple((t, s, r, plain_value(a) if a else None, d) for t, s, r, a, d in record[13])
    return tuple(out)


def plain_definition(definition: Definition) -> Definition:
    """``definition`` with its attribute values made ``marshal``-able."""
    out = list(definition)
    attributes = 2 if definition[0] == "resource" else 5
    out[attributes] = plain_value(definition[attributes]) if definition[attributes] else None
    return tuple(out)


class SpanRecords:
    """Turns finished spans into records; numbers their resources and scopes and queues each
    one's definition (``definitions``) the first time it is seen. ``record`` may be called from
    any thread; a definition is queued before the first record that names it is returned."""

    def __init__(self) -> None:
        # id -> (the object, kept so its id is never reused while here; its index).
        self._resources: dict[int, tuple[Resource, int]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope | None, int]] = {}
        self.definitions: deque[Definition] = deque()
        # next() of a count is atomic: two threads meeting two new resources get two indexes.
        self._next_resource = itertools.count()
        self._next_scope = itertools.count()

    def _resource(self, resource: Resource) -> int:
        known = self._resources.get(id(resource))
        if known is not None and known[0] is resource:
            return known[1]
        index = next(self._next_resource)
        self.definitions.append(
            ("resource", index, _as_dict(resource.attributes), resource.schema_url or None)
        )
        self._resources[id(resource)] = (resource, index)
        return index

    def _scope(self, scope: InstrumentationScope | None) -> int:
        known = self._scopes.get(id(scope))
        if known is not None and known[0] is scope:
            return known[1]
        index = next(self._next_scope)
        if scope is None:
            definition: Definition = ("scope", index, "", None, None, None)
        else:
            definition = (
                "scope",
                index,
                scope.name or "",
                scope.version or None,
                scope.schema_url or None,
                _as_dict(scope.attributes),
            )
        self.definitions.append(definition)
        self._scopes[id(scope)] = (scope, index)
        return index

    def record(self, span: ReadableSpan) -> Record:
        """The record of a finished span (its attribute dict is shared, not copied: an ended
        span refuses every change). Reads the fields every SDK span keeps (``_context``,
        ``_events``, ...; the pinned SDK's, as the encoder's tests hold them) rather than
        through properties that copy."""
        context = span._context
        assert context is not None  # noqa: S101 - a finished SDK span always has one
        parent = span._parent
        state = context.trace_state
        status = span._status
        events = span._events
        links = span._links
        attributes = plain_attributes(span)
        if attributes is not None and type(attributes) is not dict:
            attributes = dict(attributes)
        resources = self._resources.get(id(span._resource))
        scope = span._instrumentation_scope or None
        scopes = self._scopes.get(id(scope))
        return (
            context.trace_id,
            context.span_id,
            ",".join(f"{key}={value}" for key, value in state.items()) if state else None,
            parent.span_id if parent is not None else None,
            parent is not None and parent.is_remote,
            span._name,
            span._kind.value,
            span._start_time or 0,
            span._end_time or 0,
            attributes or None,
            span.dropped_attributes,
            tuple(
                (e.timestamp, e.name, _as_dict(e.attributes), e.dropped_attributes) for e in events
            )
            if events
            else None,
            span.dropped_events,
            tuple(
                (
                    link.context.trace_id,
                    link.context.span_id,
                    link.context.is_remote,
                    _as_dict(link.attributes),
                    link.dropped_attributes,
                )
                for link in links
            )
            if links
            else None,
            span.dropped_links,
            status.status_code.value,
            status.description or None,
            resources[1]
            if resources is not None and resources[0] is span._resource
            else self._resource(span._resource),
            scopes[1] if scopes is not None and scopes[0] is scope else self._scope(scope),
        )
