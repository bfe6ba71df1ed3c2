"""What a node says about itself when it registers."""

from __future__ import annotations

import platform
import socket

import psutil

from opscaffold.daemon import package_version
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb

# platform.machine() spellings → the names the Manager (and package manifests) use.
ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
}


def arch() -> str:
    machine = platform.machine().lower()
    return ARCH.get(machine, machine)


def outbound_ip(host: str, port: int) -> str:
    """The local address of the interface that routes to the Manager.

    A UDP "connect" only selects a route; no packet leaves. Empty when there is no route:
    the Manager then records the address it sees the call come from.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.connect(address)
            return str(probe.getsockname()[0])
    except OSError:
        return ""


def register_request(
    manager_host: str, manager_port: int, agent_port: int, labels: dict[str, str]
) -> pb.RegisterRequest:
    """Blocking (DNS, psutil): call it off the event loop."""
    return pb.RegisterRequest(
        hostname=socket.gethostname(),
        ip=outbound_ip(manager_host, manager_port),
        port=agent_port,
        os=platform.system().lower(),
        arch=arch(),
        kernel_version=platform.release(),
        daemon_version=package_version(),
        cpu_cores=psutil.cpu_count(logical=True) or 0,
        memory_total=psutil.virtual_memory().total,
        disk_total=psutil.disk_usage("/").total,
        labels=labels,
    )
