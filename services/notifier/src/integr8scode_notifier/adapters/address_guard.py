"""Resolving a target's host and applying the address policy (``domain/addresses.py``).

The senders connect to the very addresses this returned (the webhook sender by address, the
Slack sender through a resolver that asks this guard), so a name that resolves to a public
address when checked and to a private one a moment later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from integr8scode_notifier.domain.addresses import AddressPolicy, IPAddress
from integr8scode_notifier.domain.errors import ResolutionError, TargetRefusedError
from integr8scode_notifier.domain.retry import AttemptResult

Resolve = Callable[[str, int], Awaitable[list[str]]]

_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (asyncio's threaded getaddrinfo)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def ip_literal(host: str) -> IPAddress | None:
    """``host`` as an address when it is one (``[::1]`` included), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolution_failure(exc: ResolutionError) -> AttemptResult:
    return AttemptResult.permanent(str(exc)) if exc.permanent else AttemptResult.retryable(str(exc))


def http_target(url: str) -> tuple[str, int] | AttemptResult:
    """Host and port of an http(s) URL, or the permanent failure that it isn't one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return AttemptResult.permanent(f"invalid URL: {exc}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return AttemptResult.permanent("the URL must be http(s) with a host")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


class AddressGuard:
    """Resolves a host and refuses it when any of its addresses breaks the policy."""

    def __init__(
        self, policy: AddressPolicy, resolve: Resolve = system_resolve, timeout_s: float = 5.0
    ) -> None:
        self._policy = policy
        self._resolve = resolve
        self._timeout_s = timeout_s

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses to connect to, in resolver order; ``TargetRefusedError`` when any of
        them is not allowed, ``ResolutionError`` when the name does not resolve."""
        literal = ip_literal(host)
        candidates = [literal] if literal is not None else await self._lookup(host, port)
        for address in candidates:
            reason = self._policy.refusal(address)
            if reason is not None:
                where = f"{address} is" if literal is not None else f"{host} resolves to {address},"
                raise TargetRefusedError(f"target refused: {where} a {reason} address")
        return candidates

    async def check(self, host: str, port: int) -> list[IPAddress] | AttemptResult:
        """``addresses``, or the outcome that ends the attempt: refused, or a resolution
        failure (permanent when the name does not exist)."""
        try:
            return await self.addresses(host, port)
        except TargetRefusedError as exc:
            return AttemptResult.refused(str(exc))
        except ResolutionError as exc:
            return resolution_failure(exc)

    async def _lookup(self, host: str, port: int) -> list[IPAddress]:
        try:
            async with asyncio.timeout(self._timeout_s):
                raw = await self._resolve(host, port)
        except socket.gaierror as exc:
            raise ResolutionError(
                f"{host} does not resolve: {exc.strerror or exc}",
                permanent=exc.errno in _NO_SUCH_NAME,
            ) from exc
        except TimeoutError as exc:
            raise ResolutionError(
                f"resolving {host} took longer than {self._timeout_s:g}s", permanent=False
            ) from exc
        except OSError as exc:
            raise ResolutionError(f"resolving {host} failed: {exc}", permanent=False) from exc
        addresses: list[IPAddress] = []
        for text in raw:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise ResolutionError(f"{host} resolves to no address", permanent=False)
        return addresses
