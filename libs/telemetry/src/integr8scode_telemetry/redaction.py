"""What outbound-call spans may show of a URL: no credentials, no query values.

Webhook URLs carry tokens in their query strings as often as in their paths; OpenTelemetry's
default redaction only knows a few cloud signature parameters. The HTTPX hooks below replace
``url.full`` with the URL minus userinfo and with every query value replaced, keeping the
parameter names (what a reader of the trace needs to tell calls apart).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry.trace import Span

URL_FULL = "url.full"
REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """``url`` without userinfo and with each query value replaced by ``REDACTED``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    query = urlencode(
        [(name, REDACTED) for name, _ in parse_qsl(parts.query, keep_blank_values=True)],
        safe=REDACTED,
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_request_url(span: Span, request: Any) -> None:
    """HTTPX request hook: overwrite the span's ``url.full`` with the redacted URL."""
    if span.is_recording():
        span.set_attribute(URL_FULL, redact_url(str(request.url)))


async def redact_request_url_async(span: Span, request: Any) -> None:
    """The same hook for ``httpx.AsyncClient``."""
    redact_request_url(span, request)
