"""The text/event-stream parser."""

from __future__ import annotations

from integr8scode_client.sse import ServerEvent, SseParser


def _parse(text: str) -> list[ServerEvent]:
    parser = SseParser()
    events = [parser.feed(line) for line in text.split("\n")]
    return [e for e in events if e is not None]


def test_events_end_at_a_blank_line_and_comments_are_skipped() -> None:
    text = ': keep-alive\n\nevent: status\ndata: {"a": 1}\n\nevent: status\ndata: {"a": 2}\n\n'
    assert _parse(text) == [
        ServerEvent("status", '{"a": 1}'),
        ServerEvent("status", '{"a": 2}'),
    ]


def test_repeated_data_lines_join_with_newlines_and_crlf_is_tolerated() -> None:
    text = "id: 7\r\ndata: one\r\ndata:two\r\n\r\n"
    assert _parse(text) == [ServerEvent("message", "one\ntwo", "7")]


def test_an_event_without_data_is_dropped_and_does_not_leak_its_name() -> None:
    text = "event: ping\n\ndata: x\n\n"
    assert _parse(text) == [ServerEvent("message", "x")]


def test_an_unfinished_event_is_not_dispatched() -> None:
    assert _parse("event: status\ndata: half") == []


def test_unknown_fields_and_retry_are_ignored() -> None:
    assert _parse("retry: 1000\nfoo: bar\ndata: y\n\n") == [ServerEvent("message", "y")]
