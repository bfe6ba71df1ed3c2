"""TLS settings reach both listeners of a real `ops-manager` process: real handshakes."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import Manager
from tests.manager.rpc.certs import CertificateAuthority

TLS_1_2 = ssl.TLSVersion.TLSv1_2
TLS_1_3 = ssl.TLSVersion.TLSv1_3


def handshake(
    port: int, ca: Path, version: ssl.TLSVersion, *, alpn: str, ciphers: str | None = None
) -> tuple[str, str] | ssl.SSLError:
    """(version, cipher) a client limited to `version` agrees on, or why it could not."""
    context = ssl.create_default_context(cafile=ca)
    context.minimum_version = context.maximum_version = version
    context.set_alpn_protocols([alpn])
    if ciphers:
        context.set_ciphers(ciphers)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
            context.wrap_socket(sock, server_hostname="localhost") as tls,
        ):
            negotiated, cipher = tls.version(), tls.cipher()
            assert negotiated is not None
            assert cipher is not None
            return negotiated, cipher[0]
    except ssl.SSLError as refused:
        return refused


def start(tmp_path: Path, **tls: str) -> Iterator[tuple[Manager, Path]]:
    authority = CertificateAuthority(tmp_path)
    server = authority.issue("server", "localhost", server=True)
    env = {
        "OPS_AUTH__PASSWORD__ARGON2_MEMORY_COST": "1024",
        "OPS_TLS__ENABLED": "true",
        "OPS_TLS__CERT_FILE": str(server.cert),
        "OPS_TLS__KEY_FILE": str(server.key),
        **{f"OPS_TLS__{key.upper()}": value for key, value in tls.items()},
    }
    manager = Manager(tmp_path, env, ca=authority.pair.cert)
    try:
        manager.start()
        yield manager, authority.pair.cert
    finally:
        manager.ensure_stopped()


@pytest.fixture
def tls_1_3_only(tmp_path: Path) -> Iterator[tuple[Manager, Path]]:
    yield from start(tmp_path, min_version="1.3")


@pytest.fixture
def chosen_suite(tmp_path: Path) -> Iterator[tuple[Manager, Path]]:
    # The test certificate has an EC key: of the two, only the ECDSA suite can be agreed.
    yield from start(
        tmp_path, cipher_suites="ECDHE-ECDSA-AES128-GCM-SHA256,ECDHE-RSA-AES256-GCM-SHA384"
    )


def test_min_version_1_3_refuses_tls_1_2_on_both_listeners(
    tls_1_3_only: tuple[Manager, Path],
) -> None:
    manager, ca = tls_1_3_only
    for port, alpn in ((manager.http_port, "http/1.1"), (manager.grpc_port, "h2")):
        assert isinstance(handshake(port, ca, TLS_1_2, alpn=alpn), ssl.SSLError), port
        agreed = handshake(port, ca, TLS_1_3, alpn=alpn)
        assert not isinstance(agreed, ssl.SSLError), agreed
        assert agreed[0] == "TLSv1.3"


def test_cipher_suites_limit_tls_1_2_on_both_listeners(
    chosen_suite: tuple[Manager, Path],
) -> None:
    manager, ca = chosen_suite
    for port, alpn in ((manager.http_port, "http/1.1"), (manager.grpc_port, "h2")):
        # A client offering every suite gets the configured one.
        assert handshake(port, ca, TLS_1_2, alpn=alpn) == (
            "TLSv1.2",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        )
        # A client offering only suites left out is refused.
        offered = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
        refused = handshake(port, ca, TLS_1_2, alpn=alpn, ciphers=offered)
        assert isinstance(refused, ssl.SSLError), (port, refused)
        # TLS 1.3 is not limited by TLS 1.2 suites.
        assert handshake(port, ca, TLS_1_3, alpn=alpn)[0] == "TLSv1.3"  # type: ignore[index]
