"""TLS on both listeners from one `tls` section: the oldest version and the TLS 1.2 suites.

HTTP (uvicorn) takes an `ssl.SSLContext`, so both settings apply directly. gRPC's TLS lives in
grpc core, whose only knob here is the process-wide cipher list `GRPC_SSL_CIPHER_SUITES`, read
once when grpc loads: `ops-manager serve` sets it before importing grpc, and the gRPC server
refuses to start with TLS settings that this process cannot honour. grpc core has no minimum
version setting (its floor is TLS 1.2); TLS 1.3 only is had by a cipher list that names no
TLS 1.2 suite the server can use, so a TLS 1.2 handshake finds no shared cipher. TLS 1.3
suites are not configurable in grpc core, so the list never touches them.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Callable

from opscaffold.manager.config import TlsSettings

GRPC_CIPHERS_ENV = "GRPC_SSL_CIPHER_SUITES"
# A PSK suite: valid to grpc core, yet never usable (the server has no pre-shared keys).
_NO_TLS12_SUITE = "PSK-AES128-CBC-SHA"
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

ContextFactory = Callable[[object, Callable[[], ssl.SSLContext]], ssl.SSLContext]


def http_context_factory(tls: TlsSettings) -> ContextFactory | None:
    """For uvicorn's `ssl_context_factory`: its default context, narrowed to our settings."""
    if not tls.enabled:
        return None

    def factory(_config: object, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        context = default()
        context.minimum_version = _VERSIONS[tls.min_version]
        if tls.cipher_suites:
            context.set_ciphers(":".join(tls.cipher_suites))
        return context

    return factory


def grpc_cipher_list(tls: TlsSettings) -> str | None:
    """The grpc core cipher list the settings need, or None for grpc's own default."""
    if not tls.enabled:
        return None
    if tls.min_version == "1.3":
        return _NO_TLS12_SUITE
    return ":".join(tls.cipher_suites) or None


def prepare_grpc(tls: TlsSettings) -> None:
    """Set grpc core's cipher list for this process; call before anything imports grpc."""
    wanted = grpc_cipher_list(tls)
    if wanted is None:
        return
    if "grpc" in sys.modules:
        raise RuntimeError(f"{GRPC_CIPHERS_ENV} must be set before grpc is imported")
    os.environ[GRPC_CIPHERS_ENV] = wanted


def grpc_problem(tls: TlsSettings) -> str | None:
    """Why the gRPC listener cannot apply tls.min_version / tls.cipher_suites in this process."""
    wanted = grpc_cipher_list(tls)
    if wanted is None or os.environ.get(GRPC_CIPHERS_ENV) == wanted:
        return None
    return (
        "tls.min_version / tls.cipher_suites cannot be applied to gRPC in this process: grpc "
        f"core reads {GRPC_CIPHERS_ENV} once at import; start the Manager with `ops-manager "
        "serve`, which sets it first"
    )
