"""Webhook deliveries: a signed JSON POST through httpx (an HTTP CLIENT span per attempt,
from the HTTPX instrumentation that ``init_telemetry`` installs).

Each attempt resolves the host through the address guard and connects to the checked address:
the request's URL names the address, ``Host`` keeps the name, and for https the TLS handshake
sends and verifies the name (httpcore's ``sni_hostname``). Redirects are not followed and the
environment's proxy settings are ignored (either would bypass the check). Each attempt gets its
own connection: a pooled connection authenticated for one name must not carry a request for
another name on the same address.

The receiver gets no ``traceparent``/``tracestate``/``baggage`` unless
``propagate_trace_context`` (``NOTIFIER_PROPAGATE_TRACE_CONTEXT``) says it is trusted with them:
the platform's trace ids are internal. With it, the context is sent even when this process
records nothing (tracing off), and the instrumentation replaces it with its client span's.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable

import httpx

from integr8scode_notifier.adapters.address_guard import AddressGuard, http_target
from integr8scode_notifier.domain.notifications import Channel, WebhookTarget
from integr8scode_notifier.domain.ports import OutboundMessage
from integr8scode_notifier.domain.retry import AttemptResult
from integr8scode_notifier.domain.signing import signature
from integr8scode_telemetry.outbound_trace import trace_context_headers, withheld_trace_context

TIMESTAMP_HEADER = "X-Integr8scode-Timestamp"
SIGNATURE_HEADER = "X-Integr8scode-Signature"
DELIVERY_HEADER = "X-Integr8scode-Delivery"
EVENT_HEADER = "X-Integr8scode-Event"
_ERROR_BODY_BYTES = 1024


def webhook_body(message: OutboundMessage) -> bytes:
    """The JSON document a receiver gets (the bytes that are signed)."""
    document = {
        "notification_id": message.notification_id,
        "event_id": message.event_id,
        "event_type": message.event_type,
        "execution": message.summary.to_json(),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


class WebhookSender:
    """``ChannelSender`` for webhooks."""

    channel = Channel.WEBHOOK

    def __init__(
        self,
        guard: AddressGuard,
        *,
        timeout_s: float,
        user_agent: str,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        propagate_trace_context: bool = False,
    ) -> None:
        self._guard = guard
        self._timeout = httpx.Timeout(timeout_s)
        self._timeout_s = timeout_s
        self._user_agent = user_agent
        # Loading the CA bundle is the slow part of a TLS context: once per process.
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._clock = clock
        self._propagate_trace_context = propagate_trace_context

    async def send(self, message: OutboundMessage) -> AttemptResult:
        target = message.target
        if not isinstance(target, WebhookTarget):
            raise TypeError(f"not a webhook target: {type(target).__name__}")
        where = http_target(target.url)
        if isinstance(where, AttemptResult):
            return where
        host, port = where
        try:
            url = httpx.URL(target.url)
        except httpx.InvalidURL as exc:
            return AttemptResult.permanent(f"invalid URL: {exc}")
        addresses = await self._guard.check(host, port)
        if isinstance(addresses, AttemptResult):
            return addresses
        # Successive attempts go to successive addresses of a name with several.
        address = addresses[(message.attempt - 1) % len(addresses)]
        body = webhook_body(message)
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            TIMESTAMP_HEADER: str(timestamp),
            DELIVERY_HEADER: message.notification_id,
            EVENT_HEADER: message.event_type,
        }
        if target.secret:
            headers[SIGNATURE_HEADER] = signature(target.secret, timestamp, body)
        if self._propagate_trace_context:
            headers.update(trace_context_headers())
        transport = httpx.AsyncHTTPTransport(verify=self._ssl_context, trust_env=False, retries=0)
        async with httpx.AsyncClient(
            transport=transport, timeout=self._timeout, follow_redirects=False, trust_env=False
        ) as client:
            request = client.build_request("POST", url, content=body, headers=headers)
            request.url = request.url.copy_with(host=str(address))
            if url.scheme == "https":
                request.extensions["sni_hostname"] = host
            try:
                with withheld_trace_context(not self._propagate_trace_context):
                    response = await client.send(request, stream=True)
            except httpx.TimeoutException:
                return AttemptResult.retryable(f"no answer within {self._timeout_s:g}s")
            except httpx.TransportError as exc:
                return AttemptResult.retryable(f"{type(exc).__name__}: {exc}")
            try:
                excerpt = await _read_prefix(response, _ERROR_BODY_BYTES)
            except httpx.HTTPError:
                excerpt = ""
            finally:
                await response.aclose()
        return AttemptResult.of_status(
            response.status_code, excerpt, response.headers.get("Retry-After")
        )


async def _read_prefix(response: httpx.Response, limit: int) -> str:
    """At most ``limit`` bytes of the body: a receiver can't make us buffer a huge answer."""
    if 200 <= response.status_code < 300:
        return ""
    collected = b""
    async for chunk in response.aiter_bytes():
        collected += chunk
        if len(collected) >= limit:
            break
    return collected[:limit].decode("utf-8", errors="replace")
