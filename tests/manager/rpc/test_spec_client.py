"""A daemon generated from the design's proto, unchanged, works against our Manager in both
identity modes (token: the node token comes back in initial metadata; mTLS: the certificate)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from grpc_tools import protoc

from opscaffold.manager.app import effective_config_of
from opscaffold.manager.command import service as command_service
from opscaffold.manager.config import TlsSettings
from opscaffold.manager.db import transaction
from opscaffold.manager.rpc import server as rpc_server
from opscaffold.manager.runtime import Runtime
from tests.manager.conftest import Stack
from tests.manager.rpc.certs import CertificateAuthority
from tests.manager.rpc.conftest import Wire

FIXTURES = Path(__file__).parents[2] / "fixtures"


@pytest.fixture(scope="module")
def spec_stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spec-proto")
    include = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{FIXTURES}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(FIXTURES / "spec_daemon.proto"),
        ]
    )
    assert code == 0
    return out


class SpecClient:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FIXTURES / "spec_client.py"), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def expect(self, phase: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 30)
        if not line:
            assert self.proc.stderr is not None
            raise AssertionError(f"spec client ended: {self.proc.stderr.read()}")
        message: dict[str, Any] = json.loads(line)
        assert message["phase"] == phase, message
        return message

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    async def exit_code(self) -> int:
        # Waited for in a thread: the Manager it talks to runs on this event loop.
        return await asyncio.to_thread(self.proc.wait, 30)


async def _queue(runtime: Runtime, node_id: int, kind: str, **payload: object) -> str:
    async with transaction(runtime.sessions) as session:
        ids = await command_service.send(
            session, runtime.command_bus, [node_id], kind, payload, timedelta(minutes=5)
        )
    return ids[0]


async def _drive(client: SpecClient, runtime: Runtime) -> None:
    """Every RPC of the design, commands over the heartbeat and over SubscribeUpdates once."""
    node_id = (await client.expect("registered"))["node_id"]
    ping = await _queue(runtime, node_id, "ping")
    client.go()
    reported = await client.expect("reported")
    assert reported["heartbeat"] is True
    assert reported["metrics"] is True
    assert reported["first_commands"] == [[ping, "ping"]]
    assert reported["second_commands"] == []
    assert reported["config"]["heartbeat_interval"] == "30"
    await client.expect("subscribed")
    await _queue(runtime, node_id, "config", config={"metric_interval": "15"})
    assert (await client.expect("event"))["event_type"] == "config_change"
    assert await client.exit_code() == 0


async def test_spec_client_in_token_mode(wire: Wire, stack: Stack, spec_stubs: Path) -> None:
    client = SpecClient(
        "--proto-out",
        str(spec_stubs),
        "--target",
        f"127.0.0.1:{wire.service.port}",
        "--mode",
        "token",
        "--uuid",
        str(uuid.uuid4()),
        "--enrollment-token",
        wire.enrollment_token,
    )
    await _drive(client, stack.runtime)


@pytest.fixture
async def mtls_service(
    wire: Wire, stack: Stack, tmp_path: Path
) -> AsyncIterator[tuple[rpc_server.GrpcService, CertificateAuthority]]:
    ca = CertificateAuthority(tmp_path)
    server = ca.issue("server", "localhost", server=True)
    tls = TlsSettings(
        enabled=True, cert_file=server.cert, key_file=server.key, ca_file=ca.pair.cert
    )
    runtime = Runtime.build(stack.settings.model_copy(update={"tls": tls}))
    service = await rpc_server.start(
        runtime, effective_config_of(runtime.settings), reuse_port=False
    )
    try:
        yield service, ca
    finally:
        await service.stop(grace=0)
        await runtime.close()


async def test_spec_client_in_mtls_mode(
    mtls_service: tuple[rpc_server.GrpcService, CertificateAuthority],
    stack: Stack,
    spec_stubs: Path,
) -> None:
    service, ca = mtls_service
    node_uuid = str(uuid.uuid4())
    runtime = service.channel.runtime  # its command bus is the one that wakes the stream
    node = ca.issue("node", node_uuid)
    client = SpecClient(
        "--proto-out",
        str(spec_stubs),
        "--target",
        f"localhost:{service.port}",
        "--mode",
        "mtls",
        "--uuid",
        node_uuid,
        "--ca",
        str(ca.pair.cert),
        "--cert",
        str(node.cert),
        "--key",
        str(node.key),
    )
    await _drive(client, runtime)


async def test_mtls_refuses_a_certificate_for_another_node(
    mtls_service: tuple[rpc_server.GrpcService, CertificateAuthority], spec_stubs: Path
) -> None:
    service, ca = mtls_service
    node = ca.issue("intruder", str(uuid.uuid4()))
    client = SpecClient(
        "--proto-out",
        str(spec_stubs),
        "--target",
        f"localhost:{service.port}",
        "--mode",
        "mtls",
        "--uuid",
        str(uuid.uuid4()),
        "--ca",
        str(ca.pair.cert),
        "--cert",
        str(node.cert),
        "--key",
        str(node.key),
    )
    assert await client.exit_code() != 0
    assert client.proc.stderr is not None
    assert "PERMISSION_DENIED" in client.proc.stderr.read()
