"""Spans without the SDK's ``Tracer.start_span`` machinery, and with far fewer objects for the
garbage collector to scan: libs/events' publish, consume and batch spans, libs/telemetry's Mongo
command spans and ``start_span``.

With the SDK's tracer, a span of the library's ~13 attributes cost ~20 µs of the event loop to
start and end and left ~11 objects tracked by the collector while it waited in the batch
processor's queue (a lock, a ``BoundedAttributes`` with its own lock and dict, two
``BoundedList`` with a deque and a lock each, a ``ReadableSpan`` copy at the end): in the traced
round of ``bench/events_throughput.py`` the collections they triggered cost as much again.

``start_span`` does what ``opentelemetry.sdk.trace.Tracer.start_span`` does, with the same
tracer's own parts: its sampler (asked with the same arguments, so ratio, adaptive, off and
parent-based decisions hold), id generator, resource, instrumentation scope, span limits,
tracer configuration and span processors (``on_start``, ``_on_ending``, ``on_end``). What it
makes is a ``LeanSpan``: an SDK ``Span`` (so an ``opentelemetry.trace.Span`` and a
``ReadableSpan``) that keeps its attributes in a plain dict (values cleaned as the SDK cleans
them, the same limits and drop counts), its events and links in lists made on first use, one
re-entrant lock shared by every lean span (held for a few instructions), and hands itself to
``on_end``: once ended it refuses every change, as the SDK's copy does. Any other tracer (the
API's no-op one, a proxy, a subclass, another SDK) is called as it is.

It relies on the pinned SDK's tracer fields (``sampler``, ``id_generator``, ``resource``,
``span_processor``, ``_span_limits``, ``_instrumentation_scope``, ``_tracer_metrics``,
``_is_enabled``); ``tests/unit/test_lean_spans.py`` holds the exported spans to the SDK's,
field by field, and fails if an upgrade moves them.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from _thread import LockType
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes, _clean_attribute_value
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    EventBase,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    _is_valid_link,
)
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationInfo, InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

log = logging.getLogger(__name__)

# The four trace flags a new span can have, by (sampled, random trace id).
_FLAGS = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        | (TraceFlags.RANDOM_TRACE_ID if random else 0)
    )
    for sampled in (False, True)
    for random in (False, True)
}
_PLAIN_VALUES = (str, int, bool, float, bytes, type(None))
_PLAIN_TYPES = frozenset(_PLAIN_VALUES)
_STR_ONLY = frozenset((str,))
_NO_EVENTS: tuple[Any, ...] = ()
_NO_LINKS: tuple[Link, ...] = ()


def _plain(attributes: Mapping[str, Any], max_value_len: int | None) -> bool:
    """True when the SDK's cleaning would keep ``attributes`` exactly as they are: non-empty
    string keys, values of the plain types, strings within the length limit. The type checks
    run as set operations over ``map(type, ...)`` (in C, not a Python loop per attribute)."""
    if not _STR_ONLY.issuperset(map(type, attributes)) or "" in attributes:
        return False
    values = attributes.values()
    if not _PLAIN_TYPES.issuperset(map(type, values)):
        return False
    if max_value_len is None:
        return True
    return all(len(value) <= max_value_len for value in values if type(value) is str)


class LeanSpan(SdkSpan):
    """An SDK span built without ``Span.__init__``'s bounded containers; see the module
    docstring. Made only by ``start_span``."""

    # One lock for every lean span: it guards a span's end against a late change (as the
    # SDK's per-span lock does) without a lock object per span for the collector to track.
    # Re-entrant: the SDK's set_status and update_name (inherited) log under it, and a logging
    # handler may touch a span on the same thread. Nothing else here logs or calls out under it.
    _lock = cast("LockType", threading.RLock())  # the SDK types its per-span lock

    def __init__(  # noqa: PLR0917 - the parts of a span, all given by start_span
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        tracer: SdkTracer,
        attributes: types.Attributes,
        links: Sequence[Link],
        kind: SpanKind,
        record_exception: bool,
        set_status_on_exception: bool,
        record_end_metrics: Callable[[], None] | None,
    ) -> None:
        # Deliberately not SdkSpan.__init__: the same fields, plain containers.
        limits: SpanLimits = tracer._span_limits
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info: InstrumentationInfo | None = tracer.instrumentation_info
        self._instrumentation_scope: InstrumentationScope | None = tracer._instrumentation_scope
        self._parent = parent
        self._start_time: int | None = None
        self._end_time: int | None = None
        self._resource: Resource = tracer.resource
        self._status = trace.Status(trace.StatusCode.UNSET)
        self._sampler = tracer.sampler
        self._trace_config = None
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        self._span_processor: SpanProcessor = tracer.span_processor
        self._limits = limits
        self._record_end_metrics = record_end_metrics
        self._attributes: dict[str, types.AnyValue] = {}
        self._dropped_attributes = 0
        if attributes:
            self._add_attributes(attributes)
        # Events the SDK's add_event builds (EventBase typed, Event made).
        self._events: list[Any] | tuple[Any, ...] = _NO_EVENTS
        self._dropped_events = 0
        self._links: list[Link] | tuple[Link, ...] = _NO_LINKS
        self._dropped_links = 0
        if links:
            self._start_links(links)

    # -- attributes --------------------------------------------------------------------------

    def _add_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        """What ``BoundedAttributes._set_items`` does: clean (the SDK's own function when a
        value isn't plain), count what cleaning dropped, re-set keys move to the end, the
        oldest goes when full."""
        cleaned, dropped = self._cleaned(attributes)
        self._dropped_attributes += dropped
        if self._insert(cleaned):
            log.warning("Attributes dict is full. Dropping the oldest key-value pairs.")

    def _cleaned(
        self, attributes: Mapping[str, types.AnyValue]
    ) -> tuple[Mapping[str, types.AnyValue], int]:
        """The attributes as the SDK would keep them, and how many it would drop. Never
        called under the lock: cleaning may call a value's ``__str__`` and may log."""
        if self._limits.max_span_attributes == 0:
            return {}, len(attributes)
        max_value_len = self._limits.max_span_attribute_length
        if _plain(attributes, max_value_len):
            return attributes, 0
        cleaned = _clean_attribute_value(attributes, max_value_len)
        return cleaned, len(attributes) - len(cleaned)

    def _insert(self, attributes: Mapping[str, types.AnyValue]) -> int:
        """Put cleaned attributes in; returns how many old ones made room (counted dropped)."""
        current = self._attributes
        limit = self._limits.max_span_attributes
        if (limit is None or len(current) + len(attributes) <= limit) and current.keys().isdisjoint(
            attributes
        ):
            current.update(attributes)
            return 0
        evicted = 0
        for key, value in attributes.items():
            if key in current:
                del current[key]
            if limit is not None and len(current) >= limit:
                del current[next(iter(current))]
                evicted += 1
            current[key] = value
        self._dropped_attributes += evicted
        return evicted

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        cleaned, dropped = self._cleaned(attributes)
        evicted = 0
        with self._lock:
            ended = self._end_time is not None
            if not ended:
                self._dropped_attributes += dropped
                evicted = self._insert(cleaned)
        if ended:
            log.warning("Setting attribute on ended span.")
        elif evicted:
            log.warning("Attributes dict is full. Dropping the oldest key-value pairs.")

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        # What BoundedAttributes.__setitem__ does: no room at all, or an invalid key, counts
        # a drop; the value is cleaned by the SDK's function unless it is plain already.
        limits = self._limits
        valid_key = bool(key) and isinstance(key, str)
        if valid_key and limits.max_span_attributes != 0:
            kind = type(value)
            if kind not in _PLAIN_VALUES or (
                kind is str and limits.max_span_attribute_length is not None
            ):
                value = _clean_attribute_value(value, limits.max_span_attribute_length)
        evicted = 0
        with self._lock:
            ended = self._end_time is not None
            if not ended:
                if valid_key and limits.max_span_attributes != 0:
                    evicted = self._insert({key: value})
                else:
                    self._dropped_attributes += 1
        if ended:
            log.warning("Setting attribute on ended span.")
        elif not valid_key and limits.max_span_attributes != 0:
            log.warning("invalid key `%s`. must be non-empty string. Dropping key.", key)
        elif evicted:
            log.warning("Attributes dict is full. Dropping the oldest key-value pair.")

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_attributes

    # -- events and links ----------------------------------------------------------------------

    def _add_event(self, event: EventBase) -> None:
        # add_event and record_exception are the SDK's: they build the event as it does.
        with self._lock:
            ended = self._end_time is not None
            if not ended:
                events = self._events
                if not isinstance(events, list):
                    events = self._events = list(events)
                limit = self._limits.max_events
                if limit is not None and len(events) >= limit:
                    if events:
                        del events[0]
                    self._dropped_events += 1
                if limit != 0:
                    events.append(event)
        if ended:
            log.warning("Tried calling %s on an ended span.", "_add_event")

    @property
    def dropped_events(self) -> int:
        return self._dropped_events

    def _bounded_link(self, link: Link) -> Link:
        """The link with its attributes bounded as the SDK bounds them (a link already bounded
        the same way, such as one given to every span of a batch, is kept as it is)."""
        limits = self._limits
        current = link.attributes
        if not (
            type(current) is BoundedAttributes
            and current._immutable
            and current.maxlen == limits.max_link_attributes
            and current.max_value_len == limits.max_attribute_length
        ):
            link._attributes = BoundedAttributes(
                limits.max_link_attributes,
                current,
                max_value_len=limits.max_attribute_length,
                immutable=True,
            )
        return link

    def _start_links(self, links: Sequence[Link]) -> None:
        valid = [
            self._bounded_link(link)
            for link in links
            if link and _is_valid_link(link.context, link.attributes)
        ]
        limit = self._limits.max_links
        if limit is not None and len(valid) > limit:
            self._dropped_links = len(valid) - limit
            valid = valid[len(valid) - limit :]
        self._links = valid

    def _add_link(self, link: Link) -> None:
        # add_link is the SDK's: it checks and bounds the link as it does.
        with self._lock:
            ended = self._end_time is not None
            if not ended:
                links = self._links
                if not isinstance(links, list):
                    links = self._links = list(links)
                limit = self._limits.max_links
                if limit is not None and len(links) >= limit:
                    if links:
                        del links[0]
                    self._dropped_links += 1
                if limit != 0:
                    links.append(link)
        if ended:
            log.warning("Tried calling %s on an ended span.", "_add_link")

    @property
    def dropped_links(self) -> int:
        return self._dropped_links

    # -- life --------------------------------------------------------------------------------

    def start(self, start_time: int | None = None, parent_context: Context | None = None) -> None:
        with self._lock:
            if self._start_time is not None:
                started = True
            else:
                started = False
                self._start_time = start_time if start_time is not None else time_ns()
        if started:
            log.warning("Calling start() on a started span.")
            return
        self._span_processor.on_start(self, parent_context=parent_context)

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._start_time is None:
                raise RuntimeError("Calling end() on a not started span.")
            ended = self._end_time is not None
            if not ended:
                self._end_time = end_time if end_time is not None else time_ns()
        if ended:
            log.warning("Calling end() on an ended span.")
            return
        if self._record_end_metrics:
            self._record_end_metrics()
        self._span_processor._on_ending(self)
        # Itself, not a copy: once ended it refuses every change, as the copy would.
        self._span_processor.on_end(self)

    def _readable_span(self) -> ReadableSpan:
        return self


def _new_lock_after_fork() -> None:
    # A child process has only the thread that forked: a lock another thread held at that
    # moment would stay held for good.
    LeanSpan._lock = cast("LockType", threading.RLock())


@functools.cache
def _renew_the_lock_in_forked_children() -> None:
    """Registered with the first lean span, not at import (nothing happens at import time):
    before any span the lock has never been taken."""
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def start_span(
    active: trace.Tracer,
    name: str,
    *,
    kind: SpanKind,
    attributes: types.Attributes = None,
    context: Context | None = None,
    links: Sequence[Link] = (),
    record_exception: bool = True,
    set_status_on_exception: bool = True,
    start_time: int | None = None,
) -> trace.Span:
    """``active.start_span(...)``: a ``LeanSpan`` when ``active`` is the SDK's own tracer, the
    tracer's own span otherwise. The sampler, ids, trace flags and processors are the
    tracer's, used as its ``start_span`` uses them."""
    if type(active) is not SdkTracer:
        return active.start_span(
            name,
            context=context,
            kind=kind,
            attributes=attributes,
            links=links,
            start_time=start_time,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        )
    links = links or ()
    current = trace.get_current_span(context).get_span_context()
    if not active._is_enabled():
        return trace.NonRecordingSpan(context=current)
    ids = active.id_generator
    parent: SpanContext | None = current
    if current is None or not current.is_valid:
        parent = None
        trace_id = ids.generate_trace_id()
        random_trace_id = ids.is_trace_id_random()
    else:
        trace_id = current.trace_id
        random_trace_id = current.trace_flags.random_trace_id
    sampling = active.sampler.should_sample(context, trace_id, name, kind, attributes, links)
    span_context = SpanContext(
        trace_id,
        ids.generate_span_id(),
        is_remote=False,
        trace_flags=_FLAGS[sampling.decision is Decision.RECORD_AND_SAMPLE, random_trace_id],
        trace_state=sampling.trace_state,
    )
    end_metrics = active._tracer_metrics.start_span(parent, sampling.decision)
    if sampling.decision is Decision.DROP:
        return trace.NonRecordingSpan(context=span_context)
    _renew_the_lock_in_forked_children()
    span = LeanSpan(
        name,
        span_context,
        parent,
        active,
        sampling.attributes,
        links,
        kind,
        record_exception,
        set_status_on_exception,
        end_metrics,
    )
    span.start(start_time=start_time, parent_context=context)
    return span


def start_current_span(
    active: trace.Tracer,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: types.Attributes = None,
    context: Context | None = None,
    links: Sequence[Link] = (),
    record_exception: bool = True,
    set_status_on_exception: bool = True,
    start_time: int | None = None,
) -> CurrentSpan:
    """A ``CurrentSpan`` (``Tracer.start_as_current_span`` in one small object) through
    ``start_span``: the span is current for a ``with`` block and ended after it. An
    ``Exception`` escaping the block is recorded as an event unless ``record_exception`` is
    False (libs/events records the ones it handles itself), as the SDK does."""
    span = start_span(
        active,
        name,
        kind=kind,
        attributes=attributes,
        context=context,
        links=links,
        record_exception=False,
        set_status_on_exception=set_status_on_exception,
        start_time=start_time,
    )
    return CurrentSpan(
        span,
        record_exception=record_exception,
        set_status_on_exception=set_status_on_exception,
    )


class CurrentSpan:
    """A started span made current for a ``with`` block and ended after it: what
    ``Tracer.start_as_current_span`` does (same context, same status on an escaping
    ``Exception`` when asked), as one small object instead of two nested generator context
    managers (about 2.5 µs less per span; libs/events makes one or two per message)."""

    __slots__ = ("_record_exception", "_set_status_on_exception", "_span", "_token")

    def __init__(
        self,
        span: trace.Span,
        *,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> None:
        self._span = span
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]
        span = self._span
        try:
            # As the SDK's use_span: an Exception (not a cancellation, not a GeneratorExit) is
            # recorded as an event when asked, then sets ERROR.
            if isinstance(exc, Exception) and span.is_recording():
                if self._record_exception:
                    span.record_exception(exc)
                if self._set_status_on_exception:
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            span.end()
