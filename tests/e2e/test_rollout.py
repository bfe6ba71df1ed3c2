"""Rollouts through a real Manager to three real daemons and their agents: packages built from
this repository, uploaded and signed by the Manager, deployed over the REST API, downloaded
from the Manager and installed by each daemon, which reports every step back."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from opscaffold.daemon import package_version
from opscaffold.protocol.manifest import generate_key, private_pem, public_pem, sign
from opscaffold.protocol.package import host_arch, host_os
from tests.daemon.helpers import health
from tests.daemon.packages import broken_agent_source, build, manifest_for
from tests.e2e.processes import Api, Daemon, Manager
from tests.e2e.test_daemon_process import ADMIN_PASSWORD, ENROLLMENT_TOKEN, FAST
from tests.helpers import poll_until

pytestmark = pytest.mark.timeout(180)
INSTALLED = "agent {} running, pid"  # what a daemon logs once per install it keeps


@dataclass
class Fleet:
    manager: Manager
    daemons: list[Daemon]
    offline_key: rsa.RSAPrivateKey  # trusted by the Manager, not by the daemons
    packages: Path

    def api(self) -> Api:
        return Api(self.manager, ADMIN_PASSWORD)

    def agent_of(self, node_id: int) -> Daemon:
        port = self.api().get(f"/nodes/{node_id}")["port"]
        return next(d for d in self.daemons if d.agent_port == port)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    signing, offline = generate_key(), generate_key()
    files = {
        "signing.pem": private_pem(signing),
        "trusted.pem": public_pem(signing.public_key()),
        "offline.pem": public_pem(offline.public_key()),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "signing.pem").chmod(0o600)
    env = FAST | {
        "OPS_STORAGE__SIGNING_KEY_FILE": str(tmp_path / "signing.pem"),
        "OPS_STORAGE__TRUSTED_KEYS": f'["{tmp_path / "offline.pem"}"]',
        "OPS_ROLLOUT__TICK_INTERVAL": "1s",
    }
    manager = Manager(tmp_path, env)
    manager.start()
    trust = ("--trusted-key", str(tmp_path / "trusted.pem"))
    daemons = [Daemon(manager, tmp_path / f"node-{n}", ENROLLMENT_TOKEN, *trust) for n in "abc"]
    for daemon in daemons:
        daemon.start()
    try:
        api = Api(manager, ADMIN_PASSWORD)
        poll_until(lambda: len(running_agents(api)) == 3, what="three nodes run their agents")
        yield Fleet(manager, daemons, offline, tmp_path / "packages")
    finally:
        for daemon in daemons:
            daemon.stop()
        manager.ensure_stopped()


def running_agents(api: Api) -> dict[int, dict[str, Any]]:
    """node id → its agent (pid, version), for the online nodes whose agent runs."""
    nodes = api.get("/nodes", status="online")["items"]
    agents = {node["id"]: api.get(f"/nodes/{node['id']}/agent") for node in nodes}
    return {n: a for n, a in agents.items() if a and a["status"] == "running"}


def agents_at(api: Api, version: str) -> dict[int, dict[str, Any]] | None:
    agents = running_agents(api)
    everyone = len(agents) == 3 and all(a["version"] == version for a in agents.values())
    return agents if everyone else None


def upload(api: Api, package: Path, version: str, **signed: str) -> int:
    fields = {"component": "agent", "version": version, "os": host_os(), "arch": host_arch()}
    with package.open("rb") as file:
        response = httpx.post(
            f"{api.base}/versions",
            data=fields | signed,
            files={"file": (package.name, file, "application/octet-stream")},
            headers=api.headers,
            timeout=30,
        )
    response.raise_for_status()
    return int(response.json()["data"]["id"])


def deploy(api: Api, version_id: int, **options: Any) -> dict[str, Any]:
    body = {"component": "agent", "version_id": version_id, "target_type": "all", **options}
    plan: dict[str, Any] = api.send("POST", "/updates/deploy", body)
    return plan


def settled(api: Api, batch_id: str, *, until: str = "completed") -> dict[str, Any]:
    """The rollout's status once it is no longer running (it must then be `until`)."""

    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = api.get(f"/updates/{batch_id}/status")
        return status if status["status"] != "running" else None

    status: dict[str, Any] = poll_until(ended, timeout=120, what=f"rollout {batch_id} ends")
    assert status["status"] == until, status
    return status


def when(record: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(record[field])


def test_canary_then_rolling_updates_every_agent_and_rollback_returns_them(fleet: Fleet) -> None:
    api = fleet.api()
    v1 = upload(api, build("agent", "1.0.0", fleet.packages), "1.0.0")
    v2 = upload(api, build("agent", "2.0.0", fleet.packages), "2.0.0")
    settled(api, deploy(api, v1)["batch_id"])
    on_v1 = poll_until(lambda: agents_at(api, "1.0.0"), what="every agent runs 1.0.0")

    options = {"strategy": "canary", "canary_size": 1, "batch_size": 1, "bake_seconds": 2}
    plan = deploy(api, v2, **options)

    assert [len(wave) for wave in plan["batches"]] == [1, 1, 1]
    status = settled(api, plan["batch_id"])
    assert (status["total"], status["success"], status["failed"]) == (3, 3, 0)
    on_v2 = poll_until(lambda: agents_at(api, "2.0.0"), what="every agent runs 2.0.0")
    for node_id, agent in on_v2.items():
        assert agent["pid"] != on_v1[node_id]["pid"]  # a new process, reporting the version
        assert health(fleet.agent_of(node_id).agent_port)["version"] == "2.0.0"  # type: ignore[index]
    # The waves ran one after another, and the canary baked before the rest began.
    by_wave = {r["node_id"]: r for r in status["records"]}
    canary, second, third = (by_wave[wave[0]["id"]] for wave in plan["batches"])
    assert (when(second, "started_at") - when(canary, "finished_at")).total_seconds() >= 2
    assert when(second, "finished_at") <= when(third, "started_at")

    [back] = api.send("POST", f"/updates/{plan['batch_id']}/rollback", {})["batch_ids"]
    returned = settled(api, back)

    assert {(r["from_version"], r["to_version"]) for r in returned["records"]} == {
        ("2.0.0", "1.0.0")
    }
    assert returned["success"] == 3
    poll_until(lambda: agents_at(api, "1.0.0"), what="every agent runs 1.0.0 again")


def test_a_broken_package_is_rolled_back_by_its_canary_and_pauses_the_rollout(
    fleet: Fleet, tmp_path: Path
) -> None:
    api = fleet.api()
    source = broken_agent_source(tmp_path / "broken")
    broken = upload(api, build("agent", "2.0.0", fleet.packages, source), "2.0.0")
    before = running_agents(api)

    plan = deploy(api, broken, strategy="canary", canary_size=1, batch_size=2)
    status = settled(api, plan["batch_id"], until="paused")

    [canary_id] = [node["id"] for node in plan["batches"][0]]
    records = {r["node_id"]: r for r in status["records"]}
    assert records[canary_id]["status"] == "rollback"
    assert "switched back" in records[canary_id]["error_message"]
    assert [r["status"] for n, r in records.items() if n != canary_id] == ["pending", "pending"]
    assert "failed to update" in status["reason"]

    def restarted() -> dict[int, dict[str, Any]] | None:
        agents = agents_at(api, package_version())
        return agents if agents and agents[canary_id]["pid"] != before[canary_id]["pid"] else None

    after = poll_until(restarted, what="the canary runs its earlier agent in a new process")
    assert all(after[n]["pid"] == before[n]["pid"] for n in after if n != canary_id)


def test_a_package_corrupted_in_storage_fails_the_daemons_check(fleet: Fleet) -> None:
    api = fleet.api()
    stored_before = set((fleet.manager.data_dir / "versions").glob("*.pkg"))
    version_id = upload(api, build("agent", "2.0.0", fleet.packages), "2.0.0")
    [stored] = set((fleet.manager.data_dir / "versions").glob("*.pkg")) - stored_before
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: only the hash can tell
    stored.write_bytes(bytes(data))

    status = settled(api, deploy(api, version_id)["batch_id"], until="paused")

    assert {r["status"] for r in status["records"]} == {"failed"}
    assert all("is not the signed" in r["error_message"] for r in status["records"])
    assert agents_at(api, package_version())


def test_a_package_signed_by_a_key_the_daemons_do_not_trust_is_refused(fleet: Fleet) -> None:
    api = fleet.api()
    package = build("agent", "2.0.0", fleet.packages)
    manifest = manifest_for(package, "agent", "2.0.0")
    signature = base64.b64encode(sign(manifest, fleet.offline_key)).decode()
    before = running_agents(api)

    # The Manager trusts the offline key, so it takes the package; the daemons do not.
    version_id = upload(api, package, "2.0.0", signature=signature, created_at=manifest.created_at)
    status = settled(api, deploy(api, version_id)["batch_id"], until="paused")

    errors = {r["error_message"] for r in status["records"]}
    assert errors == {"the package is not signed by a trusted key"}
    assert {n: a["pid"] for n, a in running_agents(api).items()} == {
        n: a["pid"] for n, a in before.items()
    }


def test_a_manager_killed_mid_rollout_resumes_it_without_installing_twice(fleet: Fleet) -> None:
    api = fleet.api()
    version_id = upload(api, build("agent", "2.0.0", fleet.packages), "2.0.0")
    batch_id = deploy(api, version_id, strategy="rolling", batch_size=1)["batch_id"]

    def midway() -> bool:
        status = api.get(f"/updates/{batch_id}/status")
        return bool(status["status"] == "running" and 1 <= status["success"] < 3)

    poll_until(midway, timeout=120, what="the first wave succeeds, the rollout goes on")
    fleet.manager.kill()
    fleet.manager.start()

    api = fleet.api()
    status = settled(api, batch_id)
    assert (status["total"], status["success"]) == (3, 3)
    poll_until(lambda: agents_at(api, "2.0.0"), what="every agent runs 2.0.0")
    for daemon in fleet.daemons:
        assert daemon.log.read_text().count(INSTALLED.format("2.0.0")) == 1, daemon.log
        assert len(list((daemon.state_dir / "updates").glob("*.json"))) == 1
