"""Finished spans as an OTLP ``ExportTraceServiceRequest``, written straight to protobuf bytes.

The SDK's encoder builds a protobuf object per span, attribute and value, then serialises
them, and hashes each span's ``Resource`` (a JSON dump of its attributes) to group them: in the
traced events bench that was about 60 µs of the export thread per span, and that thread holds
the GIL the event loop needs. This one writes the same message directly, and keeps the encoded
bytes of what repeats: the resource and scope (per object), span names, and attribute pairs
(``messaging.system=kafka``, a topic, a client id, ...) up to a bounded cache. The output parses
to the message the SDK's ``encode_spans`` builds (``tests/unit/test_span_encoding.py`` holds it
to that, field by field); like the SDK's, a link carries no ``trace_state``.

It encodes span records (``span_records.py``): ``encode`` makes them from spans first (the batch
processor's exporter, in this process), ``encode_records`` takes them as the export child of
``span_pipe.py`` receives them. Not thread-safe: one encoder per exporter, one export at a
time.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from integr8scode_telemetry.span_records import Definition, Record, SpanRecords

_U64 = (1 << 64) - 1
_SMALL = [bytes((n,)) for n in range(128)]
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack

# OTLP's span kinds are the API's plus one (0 is "unspecified").
_KIND = {kind.value: _SMALL[kind.value + 1] for kind in SpanKind}
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


class SpanEncoder:
    """Encodes batches of finished spans, or of their records (``span_records.py``); keeps what
    repeats between calls."""

    def __init__(self, max_cached_pairs: int = _MAX_CACHED_PAIRS) -> None:
        self._max_cached_pairs = max_cached_pairs
        # (key, type, value) -> the encoded KeyValue field. The type is part of the key:
        # True == 1 == 1.0 as dict keys, but they encode differently.
        self._pairs: dict[tuple[str, type, Any], bytes] = {}
        self._names: dict[str, bytes] = {}
        # Definitions by index: a resource's encoded field and schema url; a scope's encoded
        # field and schema url.
        self._resources: dict[int, tuple[bytes, str | None]] = {}
        self._scopes: dict[int, tuple[bytes, str | None]] = {}
        # For ``encode``: spans made into records here.
        self._records = SpanRecords()

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialised ``ExportTraceServiceRequest`` of ``spans``: grouped by resource, then
        by instrumentation scope, in the order each first appears."""
        records = [self._records.record(span) for span in spans]
        pending = self._records.definitions
        self.define([pending.popleft() for _ in range(len(pending))])
        return self.encode_records(records)

    def define(self, definitions: Iterable[Definition]) -> None:
        """Take the resource and scope definitions that records name by index."""
        for definition in definitions:
            if definition[0] == "resource":
                _, index, attributes, schema_url = definition
                body = b"".join(
                    _field(b"\x0a", _key_value(k, v)) for k, v in (attributes or {}).items()
                )
                self._resources[index] = (_field(b"\x0a", body), schema_url)
            else:
                _, index, name, version, schema_url, attributes = definition
                body = b""
                if name:
                    body += _field(b"\x0a", name.encode())
                if version:
                    body += _field(b"\x12", version.encode())
                for key, value in (attributes or {}).items():
                    body += _field(b"\x1a", _key_value(key, value))
                self._scopes[index] = (_field(b"\x0a", body), schema_url)

    def encode_records(self, records: Iterable[Record]) -> bytes:
        """The serialised ``ExportTraceServiceRequest`` of span records whose resources and
        scopes were defined (``define``): grouped as ``encode`` groups spans."""
        groups: dict[int, dict[int, list[bytes]]] = {}
        for record in records:
            by_scope = groups.get(record[17])
            if by_scope is None:
                by_scope = groups[record[17]] = {}
            encoded = by_scope.get(record[18])
            if encoded is None:
                encoded = by_scope[record[18]] = []
            encoded.append(self._span(record))
        out = []
        for resource, scopes in groups.items():
            resource_field, resource_schema = self._resources[resource]
            body = [resource_field]
            for scope, encoded in scopes.items():
                scope_field, scope_schema = self._scopes[scope]
                scope_spans = scope_field + b"".join(encoded)
                if scope_schema:
                    scope_spans += _field(b"\x1a", scope_schema.encode())
                body.append(_field(b"\x12", scope_spans))
            if resource_schema:
                body.append(_field(b"\x1a", resource_schema.encode()))
            out.append(_field(b"\x0a", b"".join(body)))
        return b"".join(out)

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

    def _span(self, record: Record) -> bytes:
        (
            trace_id,
            span_id,
            trace_state,
            parent_span_id,
            parent_is_remote,
            name,
            kind,
            start_ns,
            end_ns,
            attributes,
            dropped_attributes,
            events,
            dropped_events,
            links,
            dropped_links,
            status_code,
            status_description,
            _,
            _,
        ) = record
        parts = [
            b"\x0a\x10" + trace_id.to_bytes(16, "big"),
            b"\x12\x08" + span_id.to_bytes(8, "big"),
        ]
        if trace_state:
            parts.append(_field(b"\x1a", trace_state.encode()))
        if parent_span_id is not None:
            parts.append(b"\x22\x08" + parent_span_id.to_bytes(8, "big"))
        encoded_name = self._names.get(name)
        if encoded_name is None:
            if len(self._names) >= self._max_cached_pairs:
                self._names.clear()
            encoded_name = self._names[name] = _field(b"\x2a", name.encode())
        parts.append(encoded_name)
        parts.append(b"\x30" + _KIND[kind])
        parts.append(b"\x39" + _FIXED64(start_ns))
        parts.append(b"\x41" + _FIXED64(end_ns))
        parts.append(self._attributes(b"\x4a", attributes))
        if dropped_attributes:
            parts.append(b"\x50" + _varint(dropped_attributes))
        if events or dropped_events:
            parts.append(self._events(events or (), dropped_events))
        if links or dropped_links:
            parts.append(self._links(links or (), dropped_links))
        body = b""
        if status_description:
            body += _field(b"\x12", status_description.encode())
        if status_code:
            body += b"\x18" + _SMALL[status_code]
        parts.append(_field(b"\x7a", body))
        parts.append(_FLAGS_REMOTE if parent_is_remote else _FLAGS_LOCAL)
        return _field(b"\x12", b"".join(parts))

    def _events(self, events: Sequence[tuple[Any, ...]], dropped: int) -> bytes:
        parts = []
        for timestamp, name, attributes, dropped_attributes in events:
            body = b"\x09" + _FIXED64(timestamp) + _field(b"\x12", name.encode())
            body += self._attributes(b"\x1a", attributes)
            if dropped_attributes:
                body += b"\x20" + _varint(dropped_attributes)
            parts.append(_field(b"\x5a", body))
        if dropped:
            parts.append(b"\x60" + _varint(dropped))
        return b"".join(parts)

    def _links(self, links: Sequence[tuple[Any, ...]], dropped: int) -> bytes:
        parts = []
        for trace_id, span_id, is_remote, attributes, dropped_attributes in links:
            body = b"\x0a\x10" + trace_id.to_bytes(16, "big")
            body += b"\x12\x08" + span_id.to_bytes(8, "big")
            body += self._attributes(b"\x22", attributes)
            if dropped_attributes:
                body += b"\x28" + _varint(dropped_attributes)
            body += _LINK_FLAGS_REMOTE if is_remote else _LINK_FLAGS_LOCAL
            parts.append(_field(b"\x6a", body))
        if dropped:
            parts.append(b"\x70" + _varint(dropped))
        return b"".join(parts)
