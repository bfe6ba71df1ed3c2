"""The SSRF guard: which addresses it refuses, what widens it, and that it holds at connect
time on the address actually connected to."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from opscaffold.manager.notification.guard import Guard, TargetRefused, guarded_client
from tests.manager.notification.receivers import http_receiver

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str, why: str) -> None:
    refusal = Guard().refusal(ipaddress.ip_address(address))
    assert refusal is not None
    assert why in refusal


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert Guard().refusal(ipaddress.ip_address(address)) is None


def test_allow_private_networks_and_allowed_networks_widen_it() -> None:
    assert Guard(allow_private=True).refusal(ipaddress.ip_address("127.0.0.1")) is None
    only = Guard(allowed=(ipaddress.ip_network("127.0.0.1/32"),))
    assert only.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert only.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None  # its mapped form
    assert only.refusal(ipaddress.ip_address("127.0.0.2")) is not None
    assert only.refusal(ipaddress.ip_address("::1")) is not None


async def test_a_name_is_judged_by_what_it_resolves_to() -> None:
    with pytest.raises(TargetRefused, match=r"localhost → .* is loopback"):
        await Guard().check_url("http://localhost:8080/hook")
    with pytest.raises(TargetRefused, match="does not resolve"):
        await Guard().check_url("http://no-such-host.invalid/hook")


async def test_the_client_refuses_at_connect_time_and_never_reaches_the_receiver() -> None:
    with http_receiver() as receiver:
        async with guarded_client(Guard(), 5) as client:
            for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost")):
                with pytest.raises(TargetRefused, match="is loopback"):
                    await client.post(url, content=b"{}")
        allowed = Guard(allowed=(ipaddress.ip_network("127.0.0.0/8"),))
        async with guarded_client(allowed, 5) as client:
            response = await client.post(receiver.url, content=b"{}")

    assert response.status_code == 200
    assert len(receiver.received) == 1


async def test_no_proxy_is_taken_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with http_receiver() as receiver:
        allowed = Guard(allowed=(ipaddress.ip_network("127.0.0.0/8"),))
        async with guarded_client(allowed, 5) as client:
            response = await client.post(receiver.url, content=b"{}")
    assert response.status_code == 200
    assert isinstance(response, httpx.Response)
