"""``X-RateLimit-*`` headers on every response a rate-limit rule counted, whatever produced it
(the endpoint, an error handler, a validation error after the check)."""

from __future__ import annotations

import math

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integr8scode_api.domain.rate_limit import RateLimitDecision

STATE_KEY = "rate_limit_decision"  # where the dependency leaves the decision in scope["state"]


def rate_limit_headers(decision: RateLimitDecision) -> dict[str, str]:
    """``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (seconds until the quota is whole
    again, rounded up), plus ``Retry-After`` (whole seconds, at least 1) when refused."""
    headers = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(max(0, decision.remaining)),
        "X-RateLimit-Reset": str(math.ceil(decision.reset_after_s)),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after_s)))
    return headers


class RateLimitHeadersMiddleware:
    """Pure ASGI (no response buffering): adds the headers when the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            decision = scope.get("state", {}).get(STATE_KEY)
            if message["type"] == "http.response.start" and decision is not None:
                headers = MutableHeaders(scope=message)
                for name, value in rate_limit_headers(decision).items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
