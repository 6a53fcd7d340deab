"""Bytes to typed events and back; every failure becomes a ``DecodeError``."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from integr8scode_events.envelope import EventEnvelope
from integr8scode_events.errors import DecodeError, UnknownEventTypeError
from integr8scode_events.events import EVENT_TYPES, event_adapter


def decode_event(value: bytes | None) -> EventEnvelope:
    """Parse a message value into its concrete event class."""
    if not value:
        raise DecodeError("empty message value")
    try:
        event: EventEnvelope = event_adapter().validate_json(value)
    except ValidationError as exc:
        event_type = _peek_event_type(value)
        if event_type is not None and event_type not in EVENT_TYPES:
            raise UnknownEventTypeError(f"unknown event type {event_type!r}") from exc
        raise DecodeError(f"invalid envelope: {exc.error_count()} error(s): {_first(exc)}") from exc
    return event


def peek_envelope(value: bytes | None) -> dict[str, Any]:
    """A message value's top-level JSON object without validating it ({} when it isn't one):
    enough to name a message that is forwarded as bytes or can't be decoded."""
    if not value:
        return {}
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):  # deeply nested JSON must not escape as a crash
        return {}
    return data if isinstance(data, dict) else {}


def _peek_event_type(value: bytes) -> str | None:
    event_type = peek_envelope(value).get("event_type")
    return event_type if isinstance(event_type, str) else None


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    location = ".".join(str(part) for part in err["loc"])
    return f"{location}: {err['msg']}"
