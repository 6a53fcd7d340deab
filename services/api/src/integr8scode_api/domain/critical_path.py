"""The critical path of a trace: the chain of spans that determines its end-to-end time.

Work in this system is asynchronous: a Kafka producer span ends long before the consumer it
caused, so a span's children may end after it. The walk goes backwards from a cursor, starting
at the end of the root's whole subtree. While the cursor is past a span's own end, only
asynchronous work explains the time: the child whose subtree reaches furthest towards the cursor
is on the path (the gap before it is *waiting*: a message in a topic, a dead letter waiting for
its retry). Within the span's own time, the child it waited for is the one whose own end is
latest before the cursor (consumers never hold their producer up); the span owns the time
between that child's end and the cursor, and the cursor moves to the child's start."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from integr8scode_api.domain.trace import TraceSpan


@dataclass(frozen=True)
class PathSegment:
    """A stretch of the critical path; ``waiting`` when it lies outside the span's own time."""

    span_id: str
    start_us: int
    end_us: int
    waiting: bool = False


class _Walk:
    def __init__(self, spans: Sequence[TraceSpan]) -> None:
        ids = {s.span_id for s in spans}
        self.children: dict[str, list[TraceSpan]] = {}
        for span in spans:
            if span.parent_id in ids and span.parent_id != span.span_id:
                self.children.setdefault(span.parent_id, []).append(span)
        self.ends: dict[str, int] = {}
        self.segments: list[PathSegment] = []
        self.visited: set[str] = set()

    def subtree_end(self, span: TraceSpan, seen: frozenset[str] = frozenset()) -> int:
        cached = self.ends.get(span.span_id)
        if cached is not None:
            return cached
        seen = seen | {span.span_id}
        end = span.end_us
        for kid in self.children.get(span.span_id, []):
            if kid.span_id not in seen:  # a malformed trace with a cycle ends here
                end = max(end, self.subtree_end(kid, seen))
        self.ends[span.span_id] = end
        return end

    def own(self, span: TraceSpan, start: int, end: int) -> None:
        """The span's share of [start, end]: its own time, and waiting after it ended."""
        own_start, own_end = max(start, span.start_us), min(end, span.end_us)
        if own_end > own_start:
            self.segments.append(PathSegment(span.span_id, own_start, own_end))
        wait_start = max(start, span.end_us)
        if end > wait_start:
            self.segments.append(PathSegment(span.span_id, wait_start, end, waiting=True))

    def walk(self, span: TraceSpan, cursor: int) -> None:
        if span.span_id in self.visited:
            return
        self.visited.add(span.span_id)
        kids = self.children.get(span.span_id, [])
        while True:
            after_end = cursor > span.end_us
            if after_end:
                # Past the span's end only asynchronous work explains the time: the child
                # whose subtree reaches furthest towards the cursor.
                candidates = [
                    (min(self.subtree_end(k), cursor), k)
                    for k in kids
                    if k.span_id not in self.visited
                    and k.start_us < cursor
                    and self.subtree_end(k) > span.end_us
                ]
            else:
                # Within the span: the child it waited for, by the child's own end (its
                # asynchronous tail does not hold the span up; a consumer never does).
                candidates = [
                    (min(k.end_us, cursor), k)
                    for k in kids
                    if k.span_id not in self.visited
                    and k.kind != "consumer"
                    and k.start_us < cursor
                    and k.end_us > span.start_us
                ]
            if not candidates:
                if not after_end:
                    break
                self.own(span, span.end_us, cursor)  # waiting, with nothing of ours running
                cursor = span.end_us
                continue
            kid_end, kid = max(candidates, key=lambda c: (c[0], c[1].start_us))
            self.own(span, kid_end, cursor)
            self.walk(kid, kid_end)
            cursor = max(kid.start_us, span.start_us)
        self.own(span, span.start_us, cursor)


def critical_path(spans: Sequence[TraceSpan], root: TraceSpan) -> list[PathSegment]:
    """The segments of the path from ``root`` to the end of its subtree, in time order;
    consecutive segments of one span are merged."""
    walker = _Walk(spans)
    walker.walk(root, walker.subtree_end(root))
    merged: list[PathSegment] = []
    for seg in sorted(walker.segments, key=lambda s: (s.start_us, s.end_us)):
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.span_id == seg.span_id
            and last.waiting == seg.waiting
            and last.end_us == seg.start_us
        ):
            merged[-1] = PathSegment(seg.span_id, last.start_us, seg.end_us, seg.waiting)
        else:
            merged.append(seg)
    return merged
