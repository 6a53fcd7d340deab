"""The SSRF rule: which resolved addresses a target may have, and the guard that applies it."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from integr8scode_notifier.adapters.address_guard import AddressGuard
from integr8scode_notifier.domain.addresses import AddressPolicy
from integr8scode_notifier.domain.errors import ResolutionError, TargetRefusedError
from integr8scode_notifier.domain.retry import AttemptResult, Outcome

STRICT = AddressPolicy()
LOOPBACK_OK = AddressPolicy(allow_loopback=True)
PRIVATE_OK = AddressPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),  # IPv4-mapped public
        ("64:ff9b::808:808", None),  # NAT64 of a public address
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped loopback
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of the loopback
        ("2002:7f00:1::1", "loopback"),  # 6to4 around the loopback
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:192.168.0.1", "private"),
        ("fc00::1", "private"),  # unique-local
        ("fd12:3456::1", "private"),
        ("fec0::1", "private"),  # site-local
        ("100.64.0.1", "private"),  # shared address space (carrier NAT)
        ("192.0.2.10", "private"),  # documentation
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
    ],
)
def test_strict_policy_names_what_is_wrong(address: str, kind: str | None) -> None:
    assert STRICT.refusal(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_allowing_loopback_allows_only_loopback(address: str) -> None:
    assert LOOPBACK_OK.refusal(ipaddress.ip_address(address)) is None
    assert LOOPBACK_OK.refusal(ipaddress.ip_address("10.0.0.1")) == "private"
    assert LOOPBACK_OK.refusal(ipaddress.ip_address("169.254.169.254")) == "link-local"


@pytest.mark.parametrize("address", ["10.0.0.1", "192.168.1.1", "fd00::1", "100.64.0.1"])
def test_allowing_private_allows_private_ranges_but_not_metadata(address: str) -> None:
    assert PRIVATE_OK.refusal(ipaddress.ip_address(address)) is None
    assert PRIVATE_OK.refusal(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert PRIVATE_OK.refusal(ipaddress.ip_address("169.254.169.254")) == "link-local"
    assert PRIVATE_OK.refusal(ipaddress.ip_address("0.0.0.0")) == "unspecified"


def _resolver(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


async def test_a_name_is_refused_when_any_of_its_addresses_is() -> None:
    guard = AddressGuard(STRICT, _resolver({"mixed.test": ["93.184.216.34", "10.0.0.7"]}))
    with pytest.raises(TargetRefusedError, match=r"mixed\.test resolves to 10\.0\.0\.7"):
        await guard.addresses("mixed.test", 443)


async def test_a_public_name_gives_its_addresses_once_each_in_order() -> None:
    answers = {"public.test": ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]}
    guard = AddressGuard(STRICT, _resolver(answers))
    assert [str(a) for a in await guard.addresses("public.test", 443)] == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]


async def test_literals_are_judged_without_a_lookup() -> None:
    guard = AddressGuard(STRICT, _resolver({}))
    with pytest.raises(TargetRefusedError, match=r"169\.254\.169\.254 is a link-local address"):
        await guard.addresses("169.254.169.254", 80)
    with pytest.raises(TargetRefusedError, match="loopback"):
        await guard.addresses("[::1]", 80)
    assert [str(a) for a in await guard.addresses("8.8.8.8", 80)] == ["8.8.8.8"]


async def test_the_loopback_is_allowed_when_the_setting_says_so() -> None:
    guard = AddressGuard(LOOPBACK_OK, _resolver({"localhost": ["127.0.0.1", "::1"]}))
    assert len(await guard.addresses("localhost", 8080)) == 2


async def test_an_unknown_name_is_a_permanent_resolution_failure() -> None:
    guard = AddressGuard(STRICT, _resolver({}))
    with pytest.raises(ResolutionError) as failure:
        await guard.addresses("nowhere.invalid", 443)
    assert failure.value.permanent
    checked = await guard.check("nowhere.invalid", 443)
    assert isinstance(checked, AttemptResult)
    assert checked.outcome is Outcome.PERMANENT


async def test_a_temporary_resolver_failure_is_worth_a_retry() -> None:
    async def flaky(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    checked = await AddressGuard(STRICT, flaky).check("example.test", 443)
    assert isinstance(checked, AttemptResult)
    assert checked.outcome is Outcome.RETRYABLE


async def test_check_turns_a_refusal_into_a_refused_outcome() -> None:
    checked = await AddressGuard(STRICT, _resolver({})).check("10.1.2.3", 80)
    assert isinstance(checked, AttemptResult)
    assert checked.outcome is Outcome.REFUSED
    assert checked.error == "target refused: 10.1.2.3 is a private address"
