"""Which addresses the notifier may call (the SSRF rule).

A user names the URL, so without this rule the notifier would POST wherever they like: the
cloud metadata service (169.254.169.254), the database on the loopback, the admin API of
another service in the private network. A target is refused when ANY address its name resolves
to is not a public unicast address, unless a setting allows loopback or private ones (the local
profile allows the loopback, where the tests run their receivers). Addresses that embed an IPv4
address (IPv4-mapped, 6to4, NAT64, Teredo) are judged by the IPv4 address as well.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it is of a form that does."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_site_local(address: IPAddress) -> bool:
    return isinstance(address, ipaddress.IPv6Address) and address.is_site_local


# In order: the first that matches names the kind. Whatever is not global by then is private
# (RFC 1918, unique-local, shared address space 100.64/10, documentation ranges, ...).
_KINDS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda a: a.is_unspecified),
    ("loopback", lambda a: a.is_loopback),
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("reserved", lambda a: a.is_reserved),
    ("private", lambda a: _is_site_local(a) or a.is_private or not a.is_global),
)


def _kind(address: IPAddress) -> str | None:
    """What makes ``address`` non-public, or None for a public unicast address."""
    return next((kind for kind, matches in _KINDS if matches(address)), None)


@dataclass(frozen=True)
class AddressPolicy:
    """Loopback and private targets are refused unless allowed; link-local (where cloud
    metadata lives), multicast, reserved and unspecified addresses always are."""

    allow_loopback: bool = False
    allow_private: bool = False

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be called (e.g. ``"loopback"``), or None when it may."""
        for judged in _judged_addresses(address):
            kind = _kind(judged)
            if kind is None:
                continue
            if kind == "loopback" and self.allow_loopback:
                continue
            if kind == "private" and self.allow_private:
                continue
            return kind
        return None


def _judged_addresses(address: IPAddress) -> list[IPAddress]:
    """The addresses a connection to ``address`` really reaches. An IPv4-mapped or NAT64
    address is only a spelling of its IPv4 address; 6to4 and Teredo addresses are judged both
    as themselves and by the IPv4 address they tunnel to."""
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    inner = embedded_ipv4(address)
    if inner is None:
        return [address]
    if address.ipv4_mapped is not None or address in _NAT64 or address in _NAT64_LOCAL:
        return [inner]
    return [address, inner]
