"""The updater with real packages, a real HTTP server, a real supervisor and real agents."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from opscaffold.daemon import package_version
from opscaffold.daemon.supervisor import AgentSupervisor
from opscaffold.daemon.trust import TrustStore
from opscaffold.daemon.updater import AgentHooks, Updater, UpdaterSettings
from opscaffold.protocol.manifest import generate_key, public_pem
from opscaffold.protocol.package import file_name, host_arch, host_os
from opscaffold.protocol.update import UpdateOrder, UpdateState
from tests.daemon.helpers import BIN, closed_port_target
from tests.daemon.packages import (
    HANGS,
    PackageServer,
    broken_agent_source,
    build,
    manifest_for,
    order_for,
)
from tests.helpers import free_port, poll_until

NODE_TOKEN = "node-token-for-downloads"


@dataclass
class Keys:
    trusted: rsa.RSAPrivateKey
    unknown: rsa.RSAPrivateKey


@dataclass
class Built:
    agents: dict[str, Path]  # version → package
    broken_agent: Path  # 3.0.0, whose agent exits at once
    silent_agent: Path  # 3.1.0, whose agent runs and never answers
    daemon: Path  # 9.0.0


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(generate_key(), generate_key())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("packages")
    agents = {v: build("agent", v, out) for v in ("0.5.0", "1.0.0", "2.0.0", "2.1.0")}
    broken = build("agent", "3.0.0", out / "broken", broken_agent_source(out / "src"))
    silent_source = broken_agent_source(out / "silent-src", HANGS)
    silent = build("agent", "3.1.0", out / "silent", silent_source)
    return Built(agents, broken, silent, build("daemon", "9.0.0", out))


@pytest.fixture
def server() -> Iterator[PackageServer]:
    running = PackageServer()
    running.start()
    yield running
    running.stop()


class Node:
    """A node's state directory, trusting `keys.trusted`, with a supervised agent."""

    def __init__(
        self,
        state_dir: Path,
        keys: Keys,
        server: PackageServer,
        keep: int,
        health_timeout: float = 15,
    ) -> None:
        self.state_dir = state_dir
        self.keys = keys
        self.server = server
        self.port = free_port()
        key_file = state_dir.parent / "trusted.pem"
        key_file.write_bytes(public_pem(keys.trusted.public_key()))
        TrustStore(state_dir).install([key_file])
        self.supervisor = AgentSupervisor([], version=package_version(), stop_grace=5)
        hooks = AgentHooks(
            self.supervisor,
            ["--port", str(self.port), "--host", "127.0.0.1"],
            f"http://127.0.0.1:{self.port}/health",
        )
        settings = UpdaterSettings(
            keep_versions=keep, health_timeout=health_timeout, argv=["ops-daemon"]
        )
        self.updater = Updater(state_dir, hooks, lambda: NODE_TOKEN, settings)
        self.supervisor.replace(*self.updater.agent_launch())
        self.reports: list[UpdateState] = []
        self._task: asyncio.Task[None] | None = None
        self._ids = iter(range(1, 1000))

    async def start(self) -> None:
        self._task = asyncio.create_task(self.supervisor.run())
        await self.health(package_version())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def order(self, package: Path, version: str, **options: object) -> UpdateOrder:
        url = self.server.add(package)
        manifest = manifest_for(package, "agent", version)
        key = options.pop("key", self.keys.trusted)
        assert isinstance(key, rsa.RSAPrivateKey)
        return order_for(
            manifest, key, url, next(self._ids), rollback=bool(options.get("rollback"))
        )

    async def apply(self, order: UpdateOrder) -> UpdateState:
        async def report(state: UpdateState) -> None:
            self.reports.append(state)

        return await self.updater.apply(order, report)

    async def health(self, version: str) -> dict[str, object]:
        """The agent's /health once it reports `version`."""
        deadline = asyncio.get_running_loop().time() + 20
        body: dict[str, object] = {}
        async with httpx.AsyncClient(timeout=2) as client:
            while asyncio.get_running_loop().time() < deadline:
                try:
                    body = (await client.get(f"http://127.0.0.1:{self.port}/health")).json()
                except httpx.TransportError:
                    body = {}
                if body.get("version") == version and body.get("pid") == self.supervisor.pid:
                    return body
                await asyncio.sleep(0.05)
        raise AssertionError(f"agent never reported {version}: last {body}")

    def current(self) -> str | None:
        link = self.state_dir / "versions" / "agent" / "current"
        return os.readlink(link) if link.is_symlink() else None


@pytest.fixture
async def node(tmp_path: Path, keys: Keys, server: PackageServer) -> AsyncIterator[Node]:
    handle = Node(tmp_path / "state", keys, server, keep=3)
    await handle.start()
    yield handle
    await handle.stop()


async def test_installs_a_new_agent_and_restarts_it(node: Node, built: Built) -> None:
    first = await node.apply(node.order(built.agents["1.0.0"], "1.0.0"))
    assert first.status == "success", first.message
    v1 = await node.health("1.0.0")

    node.reports.clear()
    second = await node.apply(node.order(built.agents["2.0.0"], "2.0.0"))

    assert second.status == "success", second.message
    v2 = await node.health("2.0.0")
    assert v2["pid"] != v1["pid"]
    assert node.current() == "2.0.0"
    assert node.supervisor.snapshot().version == "2.0.0"
    statuses = [state.status for state in node.reports]
    assert statuses[0] == "downloading"
    assert statuses[-3:] == ["installing", "verifying", "success"]
    assert node.reports[-4].progress == 100  # the download's last report
    assert {seen.authorization for seen in node.server.requests} == {f"Bearer {NODE_TOKEN}"}


async def test_a_redelivered_order_installs_once(node: Node, built: Built) -> None:
    order = node.order(built.agents["1.0.0"], "1.0.0")
    assert (await node.apply(order)).status == "success"
    pid = (await node.health("1.0.0"))["pid"]
    downloads = len(node.server.requests)

    again = await node.apply(order)

    assert again.status == "success"
    assert len(node.server.requests) == downloads
    assert (await node.health("1.0.0"))["pid"] == pid


async def test_a_corrupted_package_fails_and_the_agent_keeps_running(
    node: Node, built: Built
) -> None:
    assert (await node.apply(node.order(built.agents["1.0.0"], "1.0.0"))).status == "success"
    pid = (await node.health("1.0.0"))["pid"]
    order = node.order(built.agents["2.0.0"], "2.0.0")
    data = bytearray(node.server.files[built.agents["2.0.0"].name])
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    node.server.files[built.agents["2.0.0"].name] = bytes(data)

    state = await node.apply(order)

    assert state.status == "failed"
    assert "sha256" in state.message
    assert node.current() == "1.0.0"
    assert (await node.health("1.0.0"))["pid"] == pid
    assert not list((node.state_dir / "downloads").iterdir())  # nothing left to resume


async def test_a_signature_of_an_unknown_key_is_refused_before_downloading(
    node: Node, built: Built, keys: Keys
) -> None:
    state = await node.apply(node.order(built.agents["1.0.0"], "1.0.0", key=keys.unknown))

    assert state.status == "failed"
    assert "trusted key" in state.message
    assert node.server.requests == []
    assert node.current() is None


async def test_a_key_added_beside_the_first_is_trusted_too(
    node: Node, built: Built, tmp_path: Path
) -> None:
    rotated = generate_key()
    key_file = tmp_path / "rotated.pem"
    key_file.write_bytes(public_pem(rotated.public_key()))
    TrustStore(node.state_dir).install([key_file])

    state = await node.apply(node.order(built.agents["1.0.0"], "1.0.0", key=rotated))

    assert state.status == "success", state.message
    await node.health("1.0.0")


async def test_an_older_version_is_refused_unless_it_is_a_rollback(
    node: Node, built: Built
) -> None:
    assert (await node.apply(node.order(built.agents["2.0.0"], "2.0.0"))).status == "success"
    await node.health("2.0.0")
    asked = len(node.server.requests)

    refused = await node.apply(node.order(built.agents["1.0.0"], "1.0.0"))
    assert refused.status == "failed"
    assert "older than the installed 2.0.0" in refused.message
    assert len(node.server.requests) == asked

    rolled = await node.apply(node.order(built.agents["1.0.0"], "1.0.0", rollback=True))
    assert rolled.status == "success", rolled.message
    await node.health("1.0.0")
    assert node.current() == "1.0.0"


async def test_an_agent_that_fails_its_health_check_is_rolled_back(
    node: Node, built: Built
) -> None:
    assert (await node.apply(node.order(built.agents["1.0.0"], "1.0.0"))).status == "success"
    before = (await node.health("1.0.0"))["pid"]

    state = await node.apply(node.order(built.broken_agent, "3.0.0"))

    assert state.status == "rollback"
    # Noticed when it exits, not at the end of the health check's timeout.
    assert "the agent 3.0.0 exited: agent exited with code 1" in state.message
    assert "this agent release is broken" in state.message
    assert node.current() == "1.0.0"
    after = await node.health("1.0.0")
    assert after["pid"] != before  # restarted on the version switched back to
    assert not (node.state_dir / "versions" / "agent" / "3.0.0").exists()


async def test_an_agent_that_never_answers_is_rolled_back_after_the_timeout(
    tmp_path: Path, keys: Keys, server: PackageServer, built: Built
) -> None:
    node = Node(tmp_path / "state", keys, server, keep=3, health_timeout=3)
    await node.start()
    try:
        assert (await node.apply(node.order(built.agents["1.0.0"], "1.0.0"))).status == "success"

        state = await node.apply(node.order(built.silent_agent, "3.1.0"))

        assert state.status == "rollback"
        assert "did not answer /health within 3s" in state.message
        assert node.current() == "1.0.0"
        await node.health("1.0.0")
    finally:
        await node.stop()


async def test_a_package_climbing_out_with_dotdot_is_refused(
    node: Node, keys: Keys, tmp_path: Path
) -> None:
    package = tmp_path / file_name("agent", "1.0.0", host_os(), host_arch())
    with tarfile.open(package, "w:gz") as tar:
        for name, data in [
            ("package.json", b'{"format":1,"component":"agent","version":"1.0.0","entry":"x"}'),
            ("../../escaped", b"written outside"),
        ]:
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))

    state = await node.apply(node.order(package, "1.0.0"))

    assert state.status == "failed"
    assert "'..'" in state.message
    assert not (tmp_path / "escaped").exists()
    assert not (node.state_dir / "escaped").exists()
    assert node.current() is None


async def test_an_interrupted_download_resumes_where_it_stopped(node: Node, built: Built) -> None:
    order = node.order(built.agents["1.0.0"], "1.0.0")
    cut = order.manifest.size // 2
    node.server.cut_next = cut

    state = await node.apply(order)

    assert state.status == "success", state.message
    ranges = [seen.range for seen in node.server.requests]
    assert ranges == [None, f"bytes={cut}-"]
    await node.health("1.0.0")


async def test_never_downloads_more_than_the_signed_size(node: Node, built: Built) -> None:
    order = node.order(built.agents["1.0.0"], "1.0.0")
    name = built.agents["1.0.0"].name
    node.server.files[name] += b"\0" * 200_000  # the server offers more than was signed

    state = await node.apply(order)

    assert state.status == "failed"
    assert f"more than the signed {order.manifest.size} bytes" in state.message
    assert not list((node.state_dir / "downloads").iterdir())


async def test_keeps_the_last_versions(
    tmp_path: Path, keys: Keys, server: PackageServer, built: Built
) -> None:
    node = Node(tmp_path / "state", keys, server, keep=2)
    await node.start()
    try:
        for version in ("1.0.0", "2.0.0", "2.1.0"):
            state = await node.apply(node.order(built.agents[version], version))
            assert state.status == "success", state.message
    finally:
        await node.stop()

    kept = sorted(p.name for p in (node.state_dir / "versions" / "agent").iterdir())
    assert kept == ["2.0.0", "2.1.0", "current"]


DRIVER = """
import asyncio, json, sys
from pathlib import Path
from opscaffold.daemon.supervisor import AgentSupervisor
from opscaffold.daemon.updater import AgentHooks, Updater, UpdaterSettings
from opscaffold.protocol.update import UpdateOrder

async def main():
    order = UpdateOrder.model_validate_json(Path(sys.argv[2]).read_text())
    hooks = AgentHooks(AgentSupervisor([], version="none"), [], "http://127.0.0.1:9/health")
    settings = UpdaterSettings(argv=["ops-daemon", "version"])
    updater = Updater(Path(sys.argv[1]), hooks, lambda: None, settings)
    async def report(state):
        print(state.status, state.message, flush=True)
    await updater.apply(order, report)

asyncio.run(main())
"""


async def test_a_daemon_update_re_executes_the_new_daemon(
    tmp_path: Path, keys: Keys, server: PackageServer, built: Built
) -> None:
    state_dir = tmp_path / "state"
    key_file = tmp_path / "trusted.pem"
    key_file.write_bytes(public_pem(keys.trusted.public_key()))
    TrustStore(state_dir).install([key_file])
    manifest = manifest_for(built.daemon, "daemon", "9.0.0")
    order = order_for(manifest, keys.trusted, server.add(built.daemon), 7)
    (tmp_path / "order.json").write_text(order.model_dump_json())
    (tmp_path / "driver.py").write_text(DRIVER)

    # The driver process becomes the new daemon, run with the same arguments (`version`).
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(tmp_path / "driver.py"), str(state_dir), str(tmp_path / "order.json")],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["verifying ", "9.0.0"]
    assert os.readlink(state_dir / "versions" / "daemon" / "current") == "9.0.0"
    remembered = json.loads((state_dir / "updates" / "7.json").read_text())
    assert remembered["state"]["status"] == "verifying"

    # A daemon that starts and is not 9.0.0 means 9.0.0 did not stay up: switch back.
    hooks = AgentHooks(AgentSupervisor([], version="none"), [], "http://127.0.0.1:9/health")
    settled = Updater(state_dir, hooks, lambda: None).confirm_started()
    assert [(s.state.record_id, s.state.status) for s in settled] == [(7, "rollback")]
    assert not (state_dir / "versions" / "daemon" / "current").exists()


def test_a_daemon_started_from_its_original_installation_becomes_the_installed_one(
    tmp_path: Path, built: Built
) -> None:
    state_dir = tmp_path / "state"
    home = state_dir / "versions" / "daemon"
    home.mkdir(parents=True)
    with tarfile.open(built.daemon) as tar:
        tar.extractall(home / "9.0.0", filter="data")
    (home / "current").symlink_to("9.0.0")
    log = tmp_path / "daemon.log"
    command = [str(BIN / "ops-daemon"), "run", "--manager", closed_port_target()]
    command += ["--enrollment-token", "t", "--state-dir", str(state_dir)]
    command += ["--port", str(free_port())]

    with log.open("wb") as output:
        process = subprocess.Popen(command, stderr=output)
    try:
        poll_until(lambda: "daemon 9.0.0, node" in log.read_text(), what="9.0.0 runs")
        assert process.poll() is None  # the same process, now running the package's code
    finally:
        process.terminate()
        process.wait(timeout=20)
