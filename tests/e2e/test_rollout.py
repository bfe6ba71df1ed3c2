"""A rollout through a real Manager to a real daemon: the package is uploaded and signed by the
Manager, deployed over the REST API, installed by the daemon from the Manager's download
route, and the rollout completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from opscaffold.protocol.manifest import generate_key, private_pem, public_pem
from opscaffold.protocol.package import host_arch, host_os
from tests.daemon.helpers import health
from tests.daemon.packages import build
from tests.e2e.processes import Api, Daemon, Manager
from tests.e2e.test_daemon_process import ADMIN_PASSWORD, ENROLLMENT_TOKEN, FAST, online_node
from tests.helpers import poll_until

pytestmark = pytest.mark.timeout(120)


def upload(api: Api, package: Path, version: str) -> int:
    fields = {"component": "agent", "version": version, "os": host_os(), "arch": host_arch()}
    with package.open("rb") as file:
        response = httpx.post(
            f"{api.base}/versions",
            data=fields,
            files={"file": (package.name, file, "application/octet-stream")},
            headers=api.headers,
            timeout=30,
        )
    response.raise_for_status()
    return int(response.json()["data"]["id"])


def finished(api: Api, batch_id: str) -> dict[str, Any] | None:
    status: dict[str, Any] = api.get(f"/updates/{batch_id}/status")
    return status if status["status"] not in ("running", "paused") else None


def test_a_rollout_installs_the_managers_package_on_a_real_daemon(tmp_path: Path) -> None:
    key = generate_key()
    signing, trusted = tmp_path / "signing.pem", tmp_path / "trusted.pem"
    signing.write_bytes(private_pem(key))
    signing.chmod(0o600)
    trusted.write_bytes(public_pem(key.public_key()))
    package = build("agent", "5.0.0", tmp_path / "packages")
    env = FAST | {
        "OPS_STORAGE__SIGNING_KEY_FILE": str(signing),
        "OPS_ROLLOUT__TICK_INTERVAL": "1s",
    }
    manager = Manager(tmp_path, env)
    manager.start()
    daemon = Daemon(manager, tmp_path / "node", ENROLLMENT_TOKEN, "--trusted-key", str(trusted))
    daemon.start()
    try:
        api = Api(manager, ADMIN_PASSWORD)
        node = poll_until(lambda: online_node(api), what="the node comes online")
        version_id = upload(api, package, "5.0.0")
        plan = api.send(
            "POST",
            "/updates/deploy",
            {
                "component": "agent",
                "version_id": version_id,
                "target_type": "node",
                "target_value": [str(node["id"])],
            },
        )
        assert plan["total_nodes"] == 1

        status = poll_until(lambda: finished(api, plan["batch_id"]), what="the rollout ends")

        assert (status["status"], status["success"], status["failed"]) == ("completed", 1, 0)
        [record] = status["records"]
        assert (record["node_name"], record["to_version"]) == (node["hostname"], "5.0.0")
        assert health(daemon.agent_port)["version"] == "5.0.0"  # type: ignore[index]
    finally:
        daemon.stop()
        manager.kill()
