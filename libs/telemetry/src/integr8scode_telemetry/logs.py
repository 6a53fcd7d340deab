"""Log lines that carry the current trace and span ids."""

from __future__ import annotations

import logging

from opentelemetry import trace

_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s] %(message)s"
)


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, or ``-``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        else:
            record.trace_id = "-"
            record.span_id = "-"
        return True


def configure_logging(level: str = "INFO") -> None:
    """Root logger to stderr with trace correlation; call once from a service's entry point."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(TraceContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request's full URL at INFO; outbound webhook URLs carry tokens. Its
    # warnings still show, and the HTTP client spans record each call (redacted).
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
