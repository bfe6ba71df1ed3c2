"""The wire to the Manager: channels, credentials on each call, and refusals that end a node's
conversation. Shared by the daemon and the fleet simulator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import grpc

from opscaffold.protocol.ops.daemon import daemon_pb2_grpc

if TYPE_CHECKING:
    # Exists only in the .pyi: at run time the async stub is the same class as the sync one.
    from opscaffold.protocol.ops.daemon.daemon_pb2_grpc import DaemonServiceAsyncStub

    Stub = DaemonServiceAsyncStub
Metadata = tuple[tuple[str, str], ...]


class Fatal(Exception):
    """The Manager refused this node's identity: carrying on (or enrolling again on our own)
    would be wrong, so the node stops and an operator decides."""


class NodeCredentialRefused(Fatal):
    pass


class EnrollmentRefused(Fatal):
    pass


class RegistrationRejected(Fatal):
    """The Manager found what the node says about itself invalid (e.g. a label); sending
    the same again would be refused again."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A pinned CA, and for mTLS the node's certificate and key (PEM files)."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None  # when the certificate names a host other than the target

    def credentials(self) -> Any:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=self.key.read_bytes() if self.key else None,
            certificate_chain=self.cert.read_bytes() if self.cert else None,
        )


def open_channel(target: str, tls: TlsFiles | None = None, *, own_connection: bool = False) -> Any:
    """A grpc.aio channel to `target` (HOST:PORT).

    `own_connection` gives the channel its own subchannel pool; otherwise grpc shares one TCP
    connection among channels with the same target and arguments, and K "separate" channels of
    the fleet simulator would all ride a single connection.
    """
    options: list[tuple[str, Any]] = []
    if own_connection:
        options.append(("grpc.use_local_subchannel_pool", 1))
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)


def stub(channel: Any) -> Stub:
    # The generated constructor is overloaded on the channel type, which grpc leaves untyped.
    return cast("Stub", daemon_pb2_grpc.DaemonServiceStub(channel))


def bearer(token: str | None) -> Metadata:
    return (("authorization", f"Bearer {token}"),) if token else ()


def status_name(error: grpc.aio.AioRpcError) -> str:
    code: grpc.StatusCode = error.code()
    return str(code.name)


def describe(error: grpc.aio.AioRpcError) -> str:
    return f"{status_name(error)}: {error.details() or 'no details'}"


def parse_target(target: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT → (host, port)."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"manager address {target!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
