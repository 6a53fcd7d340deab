"""Server-sent events, parsed line by line (the text/event-stream format: ``event:``,
``data:`` (joined with newlines when repeated), ``id:``, comments starting with ``:``, and a
blank line ending each event)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: str
    id: str | None = None


@dataclass
class SseParser:
    """Feed it the stream's lines (without their line ending); it gives back each event as
    the blank line ending it arrives."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, line: str) -> ServerEvent | None:
        line = line.rstrip("\r")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the API's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None  # "retry" and unknown fields are ignored, as the format says

    def _dispatch(self) -> ServerEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerEvent(self._event or "message", "\n".join(self._data), self._id)
        self._event, self._data = "", []
        return event
