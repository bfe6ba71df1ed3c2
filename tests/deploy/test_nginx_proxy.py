"""nginx with deploy/nginx/nginx.conf in front of a real Manager: the console and the API
over HTTPS, and a real daemon that enrolls and reports over gRPC through it (TLS, HTTP/2,
the Connect stream). Only what belongs to the Compose network is rewritten: upstream
addresses, listen addresses and the certificate directory."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import ROOT
from tests.deploy.helpers import nginx_binary, self_signed
from tests.e2e.processes import BIN, Manager
from tests.helpers import free_port, poll_until

PASSWORD = "proxy-test-admin-password"
TOKEN = "proxy-test-enrollment-token"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    data = tmp_path / "manager"
    data.mkdir()
    env = {"OPS_ADMIN_PASSWORD": PASSWORD, "OPS_ENROLLMENT_TOKEN": TOKEN}
    manager = Manager(data, env)
    with manager.log.open("ab") as out:
        manager.proc = subprocess.Popen(
            [str(BIN / "ops-manager"), "serve"], env=manager.env, stdout=out, stderr=out
        )
    # A first start migrates a new SQLite database: give a loaded machine time for that.
    poll_until(manager._live, timeout=120, what="the Manager answers /livez")
    yield manager
    manager.ensure_stopped()


def trust(certificate: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate))


def proxy_config(manager: Manager, certs: Path, https_port: int, http_port: int) -> str:
    text = (ROOT / "deploy/nginx/nginx.conf").read_text()
    replacements = {
        "server manager:8080;": f"server 127.0.0.1:{manager.http_port};",
        "server manager:9090;": f"server 127.0.0.1:{manager.grpc_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "/etc/nginx/certs/": f"{certs}/",
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture
def proxy(tmp_path: Path, manager: Manager) -> Iterator[tuple[int, int, Path]]:
    """nginx on free ports: (https port, http port, the certificate to trust)."""
    certs = tmp_path / "certs"
    certs.mkdir()
    certificate = self_signed(certs)
    https_port, http_port = free_port(), free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(proxy_config(manager, certs, https_port, http_port))
    log = tmp_path / "nginx.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [nginx_binary(), "-p", str(tmp_path), "-c", str(conf), "-e", "stderr",
             "-g", f"pid {tmp_path}/nginx.pid; daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited:\n{log.read_text()}")
        try:
            httpx.get(f"https://127.0.0.1:{https_port}/livez", verify=trust(certificate), timeout=1)
        except httpx.TransportError:
            return False
        return True

    poll_until(answers, what="nginx answers")
    yield https_port, http_port, certificate
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_the_console_api_and_daemons_work_through_nginx(
    tmp_path: Path, proxy: tuple[int, int, Path]
) -> None:
    https_port, http_port, certificate = proxy
    base = f"https://127.0.0.1:{https_port}"
    with httpx.Client(base_url=base, verify=trust(certificate), timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        console = client.get("/")
        assert console.status_code == 200
        assert "<div id=" in console.text
        assert client.get("/metrics").status_code == 404  # scraped inside, not published
        login = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['data']['token']}"}

        daemon_log = tmp_path / "daemon.log"
        with daemon_log.open("wb") as out:
            daemon = subprocess.Popen(
                [str(BIN / "ops-daemon"), "run",
                 "--manager", f"127.0.0.1:{https_port}",
                 "--tls-ca", str(certificate),
                 "--enrollment-token", TOKEN,
                 "--state-dir", str(tmp_path / "daemon"),
                 "--port", str(free_port())],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:

            def online() -> bool:
                if daemon.poll() is not None:
                    raise AssertionError(f"daemon exited:\n{daemon_log.read_text()}")
                nodes = client.get("/api/v1/nodes", headers=headers).json()["data"]["items"]
                return bool(nodes) and nodes[0]["status"] == "online"

            poll_until(online, timeout=60, what="the daemon is online through nginx")
        finally:
            daemon.terminate()
            daemon.wait(timeout=15)
    # Plain HTTP only redirects.
    redirect = httpx.get(f"http://127.0.0.1:{http_port}/api/v1/nodes", timeout=5)
    assert redirect.status_code == 301
    assert redirect.headers["location"].startswith("https://")
