"""The trace census's counting, on traces as Jaeger's query API returns them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.jaeger import parse_trace
from tests.trace_census import Census, count


def _span(
    span_id: str,
    name: str,
    process: str,
    kind: str,
    *,
    parent: str | None = None,
    link: tuple[str, str] | None = None,
) -> dict[str, Any]:
    references = []
    if parent:
        references.append({"refType": "CHILD_OF", "traceID": "t", "spanID": parent})
    if link:
        references.append({"refType": "FOLLOWS_FROM", "traceID": link[0], "spanID": link[1]})
    return {
        "spanID": span_id,
        "operationName": name,
        "processID": process,
        "references": references,
        "tags": [{"key": "span.kind", "value": kind}],
        "startTime": 1_000,
        "duration": 10,
    }


PROCESSES = {
    "p1": {"serviceName": "integr8scode-backend", "tags": []},
    "p2": {"serviceName": "execution-coordinator", "tags": []},
    "p3": {"serviceName": "event-replay", "tags": []},
}


def _census(*traces: tuple[str, list[dict[str, Any]]]) -> Census:
    now = datetime.now(UTC)
    census = Census(start=now, end=now)
    for trace_id, spans in traces:
        for span in spans:
            span["traceID"] = trace_id
            for reference in span["references"]:
                if reference["refType"] == "CHILD_OF":
                    reference["traceID"] = trace_id
        census.traces[trace_id] = parse_trace(
            {"traceID": trace_id, "spans": spans, "processes": PROCESSES}
        )
    return count(census)


def test_roots_are_counted_under_their_service_with_the_traces_span_count() -> None:
    census = _census(
        (
            "exec",
            [
                _span("a", "POST /api/v1/execute", "p1", "server"),
                _span("b", "kafka.consume", "p2", "consumer", parent="a"),
                _span("c", "saga.admit", "p2", "internal", parent="b"),
            ],
        ),
        ("poll", [_span("d", "find replay_sessions", "p3", "client")]),
        ("batch", [_span("e", "event_store.archive", "p3", "consumer", link=("exec", "b"))]),
        ("replay", [_span("f", "event_replay.session", "p3", "internal", link=("exec", "a"))]),
    )

    assert {s: len(r) for s, r in census.roots.items()} == {
        "integr8scode-backend": 1,
        "event-replay": 3,
    }
    [request] = census.roots["integr8scode-backend"]
    assert (request.name, request.span_count, request.background) == (
        "POST /api/v1/execute",
        3,
        False,
    )
    # Only the poll is background: the batch is a consumer, the replay links to its cause.
    assert [r.trace_id for r in census.background_roots()] == ["poll"]
    assert {r.trace_id for r in census.one_span_roots("event-replay")} == {
        "poll",
        "batch",
        "replay",
    }
    assert census.missing_parents == []
    assert census.summary()["event-replay"] == {"roots": 3, "one_span": 3, "background": 1}


def test_a_span_whose_parent_is_not_in_its_trace_is_reported() -> None:
    census = _census(
        (
            "late",
            [
                _span("a", "kafka.consume", "p2", "consumer"),
                _span("b", "dlq.retry", "p2", "internal", parent="gone"),
            ],
        ),
        ("other", [_span("c", "GET /health", "p1", "server")]),
    )

    [missing] = census.missing_parents
    assert (missing.trace_id, missing.span.name, missing.span.parent_id) == (
        "late",
        "dlq.retry",
        "gone",
    )
    assert census.missing_parents_in(["other"]) == []
    assert "gone" in missing.describe()
