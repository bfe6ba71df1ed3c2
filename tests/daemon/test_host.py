from __future__ import annotations

import platform
import socket

import psutil

from opscaffold.daemon import package_version
from opscaffold.daemon.host import arch, outbound_ip, register_request


def test_register_request_describes_this_machine() -> None:
    request = register_request("127.0.0.1", 9090, 9100, {"env": "test"})
    assert request.hostname == socket.gethostname()
    assert request.ip == "127.0.0.1"  # the route to a loopback Manager is loopback
    assert request.port == 9100
    assert request.os == "linux"
    assert request.arch in ("amd64", "arm64")
    assert request.kernel_version == platform.release()
    assert request.daemon_version == package_version()
    assert request.cpu_cores == psutil.cpu_count()
    assert request.memory_total == psutil.virtual_memory().total
    assert request.disk_total == psutil.disk_usage("/").total
    assert dict(request.labels) == {"env": "test"}


def test_arch_uses_the_names_the_manager_knows() -> None:
    assert arch() == {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())


def test_no_route_gives_an_empty_ip_for_the_manager_to_fill() -> None:
    assert outbound_ip("name.invalid", 9090) == ""
