"""Whether a node's daemon applied its configuration: the effective configuration's
`delivery`, followed through the real gRPC server as a daemon receives and reports it."""

from __future__ import annotations

from typing import Any

import httpx

from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from tests.manager.conftest import Stack
from tests.manager.rpc.conftest import Wire
from tests.manager.rpc.test_commands import Daemon

NODES = "/api/v1/nodes"


async def effective(client: httpx.AsyncClient, headers: dict[str, str], node_id: int) -> Any:
    response = await client.get(f"{NODES}/{node_id}/config/effective", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def put_config(
    client: httpx.AsyncClient, headers: dict[str, str], node_id: int, config: dict[str, str]
) -> None:
    response = await client.put(
        f"{NODES}/{node_id}/config", json={"config": config}, headers=headers
    )
    assert response.status_code == 200, response.text


async def test_the_daemons_acknowledgement_of_the_latest_config_is_shown(
    wire: Wire, stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    registered, _ = await wire.register()
    node_id = registered.node_id
    # Nothing sent since it enrolled: Register gave it its configuration.
    assert (await effective(client, admin_headers, node_id))["delivery"] is None

    await put_config(client, admin_headers, node_id, {"region": "eu"})
    queued = (await effective(client, admin_headers, node_id))["delivery"]
    assert (queued["state"], queued["current"], queued["done_at"]) == ("pending", True, None)

    daemon = Daemon(wire, registered.node_token)
    try:
        command = (await daemon.next("command")).command
        assert command.id == queued["command_id"]
        sent = (await effective(client, admin_headers, node_id))["delivery"]
        assert sent["state"] == "sent"  # delivered, not yet applied
        await daemon.send(
            command_ack=pb.CommandAck(
                command_ids=[command.id], results=[pb.CommandResult(command_id=command.id, ok=True)]
            )
        )
        await daemon.next("ack")
        applied = (await effective(client, admin_headers, node_id))["delivery"]
        assert (applied["command_id"], applied["state"], applied["current"]) == (
            command.id,
            "done",
            True,
        )
        assert applied["done_at"] is not None

        # A later change is the one shown; refused by the daemon, it says why.
        await put_config(client, admin_headers, node_id, {"region": "us"})
        refused_id = (await daemon.next("command")).command.id
        reason = "region=us is not served here"
        await daemon.send(
            command_ack=pb.CommandAck(
                command_ids=[refused_id],
                results=[pb.CommandResult(command_id=refused_id, ok=False, error=reason)],
            )
        )
        await daemon.next("ack")
    finally:
        await daemon.close()
    refused = (await effective(client, admin_headers, node_id))["delivery"]
    assert (refused["command_id"], refused["state"], refused["error"]) == (
        refused_id,
        "failed",
        reason,
    )
