"""Finished spans as an OTLP ``ExportTraceServiceRequest``, written straight to protobuf bytes.

The SDK's encoder builds a protobuf object per span, attribute and value, then serialises
them, and hashes each span's ``Resource`` (a JSON dump of its attributes) to group them: in the
traced events bench that was about 60 µs of the export thread per span, and that thread holds
the GIL the event loop needs. This one writes the same message directly, and keeps the encoded
bytes of what repeats: the resource and scope (per object), span names, and attribute pairs
(``messaging.system=kafka``, a topic, a client id, ...) up to a bounded cache. The output parses
to the message the SDK's ``encode_spans`` builds (``tests/unit/test_span_encoding.py`` holds it
to that, field by field); like the SDK's, a link carries no ``trace_state``.

Not thread-safe: one encoder per exporter, used by the batch processor's one export at a time.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind

_U64 = (1 << 64) - 1
_SMALL = [bytes((n,)) for n in range(128)]
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack

# OTLP's span kinds are the API's plus one (0 is "unspecified").
_KIND = {kind: _SMALL[kind.value + 1] for kind in SpanKind}
# Span flags as the SDK sets them: "has is_remote" (0x100), "parent is remote" (0x200).
_FLAGS_LOCAL = b"\x85\x01" + _FIXED32(0x100)
_FLAGS_REMOTE = b"\x85\x01" + _FIXED32(0x300)
_LINK_FLAGS_LOCAL = b"\x35" + _FIXED32(0x100)
_LINK_FLAGS_REMOTE = b"\x35" + _FIXED32(0x300)

# Encoded attribute pairs kept at most; past it the cache starts over (values that repeat are
# back after one span; values unique per span, such as ids and offsets, never settle in it).
_MAX_CACHED_PAIRS = 4096


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag``, the length, ``payload``."""
    size = len(payload)
    return tag + (_SMALL[size] if size < 128 else _varint(size)) + payload


def _any_value(value: Any) -> bytes:  # noqa: PLR0911 - one return per value type
    """An ``AnyValue``'s bytes (the SDK's ``_encode_value``; None is an empty value)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value & _U64)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        pairs = b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items())
        return _field(b"\x32", pairs)
    raise TypeError(f"invalid attribute value of type {type(value).__name__}: {value!r}")


def _key_value(key: str, value: Any) -> bytes:
    return _field(b"\x0a", key.encode()) + _field(b"\x12", _any_value(value))


def _plain(span: ReadableSpan) -> Mapping[str, Any] | None:
    """A finished span's attributes as the plain dict they are kept in, when they are (the
    SDK's span keeps one inside its locked mapping, libs/events' lean span keeps one itself;
    the public view is a read-only proxy, read key by key in Python); else that public view."""
    kept = getattr(span, "_attributes", None)
    if type(kept) is dict:
        return kept
    inner = getattr(kept, "_dict", None)
    return inner if type(inner) is dict else span.attributes


class SpanEncoder:
    """Encodes batches of finished spans; keeps what repeats between calls."""

    def __init__(self, max_cached_pairs: int = _MAX_CACHED_PAIRS) -> None:
        self._max_cached_pairs = max_cached_pairs
        # (key, type, value) -> the encoded KeyValue field. The type is part of the key:
        # True == 1 == 1.0 as dict keys, but they encode differently.
        self._pairs: dict[tuple[str, type, Any], bytes] = {}
        self._names: dict[str, bytes] = {}
        # Per object (kept referenced, so its id is never reused while cached).
        self._resources: dict[int, tuple[Resource, bytes]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope | None, bytes]] = {}

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialised ``ExportTraceServiceRequest`` of ``spans``: grouped by resource, then
        by instrumentation scope, in the order each first appears."""
        groups: dict[
            int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]
        ]
        groups = {}
        for span in spans:
            resource = span.resource
            group = groups.get(id(resource))
            if group is None:
                group = groups[id(resource)] = (resource, {})
            scope = span.instrumentation_scope or None
            by_scope = group[1].get(id(scope))
            if by_scope is None:
                by_scope = group[1][id(scope)] = (scope, [])
            by_scope[1].append(self._span(span))
        out = []
        for resource, scopes in groups.values():
            body = [self._resource(resource)]
            for scope, encoded in scopes.values():
                scope_spans = self._scope(scope) + b"".join(encoded)
                if scope is not None and scope.schema_url:
                    scope_spans += _field(b"\x1a", scope.schema_url.encode())
                body.append(_field(b"\x12", scope_spans))
            if resource.schema_url:
                body.append(_field(b"\x1a", resource.schema_url.encode()))
            out.append(_field(b"\x0a", b"".join(body)))
        return b"".join(out)

    def _resource(self, resource: Resource) -> bytes:
        cached = self._resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            attributes = b"".join(
                _field(b"\x0a", _key_value(k, v)) for k, v in resource.attributes.items()
            )
            cached = self._resources[id(resource)] = (resource, _field(b"\x0a", attributes))
        return cached[1]

    def _scope(self, scope: InstrumentationScope | None) -> bytes:
        cached = self._scopes.get(id(scope))
        if cached is None or cached[0] is not scope:
            body = b""
            if scope is not None:
                if scope.name:
                    body += _field(b"\x0a", scope.name.encode())
                if scope.version:
                    body += _field(b"\x12", scope.version.encode())
                for key, value in (scope.attributes or {}).items():
                    body += _field(b"\x1a", _key_value(key, value))
            cached = self._scopes[id(scope)] = (scope, _field(b"\x0a", body))
        return cached[1]

    def _attributes(self, tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
        if not attributes:
            return b""
        pairs = self._pairs
        parts = []
        for key, value in attributes.items():
            kind = type(value)
            if kind is str or kind is int or kind is bool or kind is float:
                cache_key = (key, kind, value)
                encoded = pairs.get(cache_key)
                if encoded is None:
                    if len(pairs) >= self._max_cached_pairs:
                        pairs.clear()
                    encoded = pairs[cache_key] = _field(tag, _key_value(key, value))
                parts.append(encoded)
            else:
                parts.append(_field(tag, _key_value(key, value)))
        return b"".join(parts)

    def _span(self, span: ReadableSpan) -> bytes:
        context = span.get_span_context()
        assert context is not None  # noqa: S101 - a finished SDK span always has one
        parts = [
            b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + context.span_id.to_bytes(8, "big"),
        ]
        if context.trace_state:
            state = ",".join(f"{key}={value}" for key, value in context.trace_state.items())
            parts.append(_field(b"\x1a", state.encode()))
        parent = span.parent
        if parent is not None:
            parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        name = self._names.get(span.name)
        if name is None:
            if len(self._names) >= self._max_cached_pairs:
                self._names.clear()
            name = self._names[span.name] = _field(b"\x2a", span.name.encode())
        parts.append(name)
        parts.append(b"\x30" + _KIND[span.kind])
        parts.append(b"\x39" + _FIXED64(span.start_time or 0))
        parts.append(b"\x41" + _FIXED64(span.end_time or 0))
        parts.append(self._attributes(b"\x4a", _plain(span)))
        if span.dropped_attributes:
            parts.append(b"\x50" + _varint(span.dropped_attributes))
        if span.events or span.dropped_events:
            parts.append(self._events(span))
        if span.links or span.dropped_links:
            parts.append(self._links(span))
        status = span.status
        body = b""
        if status.description:
            body += _field(b"\x12", status.description.encode())
        if status.status_code.value:
            body += b"\x18" + _SMALL[status.status_code.value]
        parts.append(_field(b"\x7a", body))
        parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        return _field(b"\x12", b"".join(parts))

    def _events(self, span: ReadableSpan) -> bytes:
        parts = []
        for event in span.events:
            body = b"\x09" + _FIXED64(event.timestamp) + _field(b"\x12", event.name.encode())
            body += self._attributes(b"\x1a", event.attributes)
            if event.dropped_attributes:
                body += b"\x20" + _varint(event.dropped_attributes)
            parts.append(_field(b"\x5a", body))
        if span.dropped_events:
            parts.append(b"\x60" + _varint(span.dropped_events))
        return b"".join(parts)

    def _links(self, span: ReadableSpan) -> bytes:
        parts = []
        for link in span.links:
            linked = link.context
            body = b"\x0a\x10" + linked.trace_id.to_bytes(16, "big")
            body += b"\x12\x08" + linked.span_id.to_bytes(8, "big")
            body += self._attributes(b"\x22", link.attributes)
            if link.dropped_attributes:
                body += b"\x28" + _varint(link.dropped_attributes)
            body += _LINK_FLAGS_REMOTE if linked.is_remote else _LINK_FLAGS_LOCAL
            parts.append(_field(b"\x6a", body))
        if span.dropped_links:
            parts.append(b"\x70" + _varint(span.dropped_links))
        return b"".join(parts)
