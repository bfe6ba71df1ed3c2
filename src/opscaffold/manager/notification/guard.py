"""The SSRF guard: outbound webhooks and robots may only reach public addresses.

A channel's URL is checked when it is saved, and again on every connection, on the address
actually connected to: the name is resolved once, every address it gives is checked, and the
socket connects to a checked address (TLS still verifies the URL's host name). A name that
resolves to a public address when saved and to 127.0.0.1 when sent (DNS rebinding) is
refused at send time. Redirects are never followed and no proxy is taken from the
environment, so nothing else decides where a request goes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from opscaffold.manager.config import NotifySettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
CGNAT = ipaddress.ip_network("100.64.0.0/10")
MAX_URL = 1024


class TargetRefused(Exception):
    """The guard refuses to connect there; the message says why (no response was read)."""


class TargetUnresolved(TargetRefused):
    """The host name does not resolve."""


def _refusal(ip: IPAddress) -> str | None:
    """Why an address is not a public target, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and (why := _refusal(embedded)):
            return f"{why} (as {ip})"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.version == 4 and ip in CGNAT, "shared address space (CGNAT)"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "not globally routable"),
    )
    return next((f"{ip} is {what}" for hit, what in checks if hit), None)


@dataclass(frozen=True, slots=True)
class Guard:
    allow_private: bool = False
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, settings: NotifySettings) -> Guard:
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks)
        return cls(settings.allow_private_networks, networks)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why the guard refuses this address, or None when it may be connected to."""
        why = _refusal(ip)
        if why is None or self.allow_private:
            return None
        forms: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            forms.append(ip.ipv4_mapped)
        if any(f in net for f in forms for net in self.allowed if f.version == net.version):
            return None
        return why

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of `host` to connect to, every one of them allowed; refuses the
        name when any address it resolves to is not (no mixing public and internal)."""
        name = host.strip("[]")
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                name, port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError):
            raise TargetUnresolved(f"{name[:100]} does not resolve") from None
        addresses = list(dict.fromkeys(_address(info) for info in infos))
        if not addresses:
            raise TargetUnresolved(f"{name[:100]} does not resolve")
        for address in addresses:
            if why := self.refusal(ipaddress.ip_address(address)):
                raise TargetRefused(why if address == name else f"{name[:100]} → {why}")
        return addresses

    async def check_url(self, url: str) -> None:
        """Refuse a URL the guard would refuse at send time (resolving its host now)."""
        parsed = httpx.URL(url)
        await self.resolve(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))


def _address(info: tuple[Any, ...]) -> str:
    # getaddrinfo gives (family, type, proto, canonname, sockaddr); sockaddr[0] is the address
    # (an IPv6 one may carry a %scope, which ip_address refuses: such are link-local anyway).
    return str(info[4][0]).split("%", 1)[0]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects to the checked address itself, so the address checked
    is the address used."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self._guard.resolve(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not notification targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the guard as its network backend and no proxy."""

    def __init__(self, guard: Guard, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(guard),
        )


def guarded_client(guard: Guard, timeout: float) -> httpx.AsyncClient:
    """The one HTTP client notifications go out through: guarded, no redirects, no proxy."""
    return httpx.AsyncClient(
        transport=GuardedTransport(guard),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    )
