"""Slack deliveries through an incoming webhook, with slack-sdk's ``AsyncWebhookClient`` on
one aiohttp session (an HTTP CLIENT span per attempt, from the aiohttp client instrumentation
installed in ``app.py`` with a URL filter that hides the webhook's secret path).

The session's connector resolves every host through the address guard (no DNS cache), so the
connection goes to an address that was checked; an address literal skips aiohttp's resolver,
which is why each attempt also asks the guard first. The SDK's own retries are switched off
(the dispatcher retries, with its own classification) and so is its proxy discovery from the
environment (a proxy would connect to the target on our behalf, past the check).

Slack gets no trace context unless ``propagate_trace_context`` is set (as for webhooks).
"""

from __future__ import annotations

import logging
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from slack_sdk.webhook.async_client import AsyncWebhookClient

from integr8scode_notifier.adapters.address_guard import (
    AddressGuard,
    http_target,
    resolution_failure,
)
from integr8scode_notifier.domain.errors import ResolutionError, TargetRefusedError
from integr8scode_notifier.domain.notifications import Channel, SlackTarget, redact_slack_url
from integr8scode_notifier.domain.ports import OutboundMessage
from integr8scode_notifier.domain.retry import AttemptResult
from integr8scode_notifier.domain.slack_message import slack_message
from integr8scode_telemetry.outbound_trace import trace_context_headers, withheld_trace_context

# The SDK logs the full webhook URL (a credential) and body at DEBUG on the logger it is given;
# this one never emits below WARNING, whatever the service's log level.
_sdk_log = logging.getLogger(f"{__name__}.sdk")


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that only ever returns addresses the guard allowed."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._guard.addresses(host, port)
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def redact_for_span(url: object) -> str:
    """``url_filter`` of the aiohttp instrumentation: no webhook path in any span."""
    return redact_slack_url(str(url))


class SlackSender:
    """``ChannelSender`` for Slack incoming webhooks. ``start`` opens the session (inside the
    running loop, after the aiohttp instrumentation is installed); ``close`` closes it."""

    channel = Channel.SLACK

    def __init__(
        self,
        guard: AddressGuard,
        *,
        timeout_s: float,
        user_agent: str,
        propagate_trace_context: bool = False,
    ) -> None:
        self._guard = guard
        self._propagate_trace_context = propagate_trace_context
        self._timeout_s = timeout_s
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        _sdk_log.setLevel(logging.WARNING)

    async def start(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._guard), use_dns_cache=False)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            trust_env=False,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(self, message: OutboundMessage) -> AttemptResult:
        target = message.target
        if not isinstance(target, SlackTarget):
            raise TypeError(f"not a Slack target: {type(target).__name__}")
        if self._session is None:
            await self.start()
        # Checked here too: aiohttp does not ask the resolver for an address literal.
        where = http_target(target.webhook_url)
        if isinstance(where, AttemptResult):
            return where
        checked = await self._guard.check(*where)
        if isinstance(checked, AttemptResult):
            return checked
        # The session's timeout applies (the client's own is only for sessions it makes).
        client = AsyncWebhookClient(
            url=target.webhook_url,
            session=self._session,
            logger=_sdk_log,
            retry_handlers=[],
            user_agent_prefix=self._user_agent,
        )
        client.proxy = None  # set from the environment by the constructor; see the docstring
        content = slack_message(message.summary)
        headers = trace_context_headers() if self._propagate_trace_context else None
        try:
            with withheld_trace_context(not self._propagate_trace_context):
                response = await client.send(
                    text=content.text, blocks=content.blocks, headers=headers
                )
        except (TargetRefusedError, ResolutionError, TimeoutError, aiohttp.ClientError) as exc:
            return _failure(exc, target)
        return AttemptResult.of_status(
            response.status_code, response.body or "", response.headers.get("Retry-After")
        )


def _failure(exc: Exception, target: SlackTarget) -> AttemptResult:
    if isinstance(exc, TargetRefusedError):  # the name resolves elsewhere now (rebinding)
        return AttemptResult.refused(str(exc))
    if isinstance(exc, ResolutionError):
        return resolution_failure(exc)
    if isinstance(exc, TimeoutError):
        return AttemptResult.retryable("no answer in time")
    # aiohttp names the URL in some errors: never the webhook's secret path.
    error = f"{type(exc).__name__}: {exc}".replace(target.webhook_url, target.redacted)
    return AttemptResult.retryable(error)
