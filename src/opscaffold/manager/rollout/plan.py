"""Deploys: which nodes of a target can take a version, in which waves, and starting them."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.command import service as command_service
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.errors import InvalidArgument, NoEligibleNodes
from opscaffold.manager.models import Rollout, Version
from opscaffold.manager.node import service as node_service
from opscaffold.manager.node.repository import chunks
from opscaffold.manager.rollout import repository
from opscaffold.manager.rollout.repository import NodeFacts
from opscaffold.manager.rollout.schemas import (
    DeployPlan,
    DeployRequest,
    IneligibleNode,
    PlannedNode,
)
from opscaffold.manager.version import repository as version_repository
from opscaffold.manager.version import service as version_service
from opscaffold.protocol.manifest import Manifest
from opscaffold.protocol.update import UpdateOrder


async def deploy(
    session: AsyncSession,
    bus: CommandBus,
    request: DeployRequest,
    base_url: str,
    created_by: int,
    now: datetime,
) -> DeployPlan:
    """Plan a rollout of a version to a target; unless a dry run, record it and send the
    first wave's orders in the caller's transaction."""
    version = await version_service.get(session, request.version_id)
    _check_version(version, request)
    # Deploys of a component take turns, so two never take the same node.
    await version_repository.lock_component(session, version.component)
    node_ids = await node_service.resolve_target(session, request.target_type, request.target_value)
    eligible, ineligible = await _sort(session, version, node_ids)
    if not eligible:
        raise NoEligibleNodes(_why_none(version, ineligible, len(node_ids)))
    waves = _waves(request, eligible)
    batch_id = None if request.dry_run else str(uuid.uuid4())
    plan = DeployPlan(
        batch_id=batch_id,
        dry_run=request.dry_run,
        total_nodes=len(eligible),
        batches=[
            [PlannedNode(id=n.id, name=n.name, offline=not n.online) for n in w] for w in waves
        ],
        ineligible=ineligible,
    )
    if batch_id is None:
        return plan
    rollout = Rollout(
        batch_id=batch_id,
        component=version.component,
        version_id=version.id,
        version=version.version,
        strategy=request.strategy,
        batch_size=request.batch_size,
        max_failures=request.max_failures,
        canary_size=request.canary_size,
        bake_seconds=request.bake_seconds,
        total_waves=len(waves),
        current_wave=1,
        status="running",
        expires_at=now + timedelta(seconds=request.expires_in_seconds),
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    await repository.add_rollout(session, rollout)
    await repository.insert_records(session, _records(rollout, waves, now))
    await send_wave(session, bus, rollout, version, 1, base_url, now)
    return plan


def _planned(node: NodeFacts) -> PlannedNode:
    return PlannedNode(id=node.id, name=node.name, offline=not node.online)


def _check_version(version: Version, request: DeployRequest) -> None:
    if version.component != request.component:
        raise InvalidArgument(
            f"version_id: version {version.id} is a {version.component} package, "
            f"not {request.component}"
        )
    if not version.manifest:
        raise InvalidArgument(
            f"version_id: version {version.id} has no signed manifest; upload it again"
        )


async def _sort(
    session: AsyncSession, version: Version, node_ids: Sequence[int]
) -> tuple[list[NodeFacts], list[IneligibleNode]]:
    """Eligible nodes (online ones first, so a canary wave is not waiting on offline nodes)
    and the others with the reason. A few queries per chunk of nodes, none per node."""
    eligible: list[NodeFacts] = []
    ineligible: list[IneligibleNode] = []
    for part in chunks(node_ids):
        facts = await repository.node_facts(session, part, version.component)
        held = await repository.held_nodes(session, part, version.component)
        for node in facts:
            reason = _reason(version, node, held.get(node.id))
            if reason is None:
                eligible.append(node)
            else:
                ineligible.append(IneligibleNode(id=node.id, name=node.name, reason=reason))
    eligible.sort(key=lambda n: (not n.online, n.id))
    return eligible, ineligible


def _reason(version: Version, node: NodeFacts, held_by: str | None) -> str | None:
    if (node.os, node.arch) != (version.os, version.arch):
        platform = f"{node.os or '?'}/{node.arch or '?'}"
        return f"platform: runs {platform}, the package is for {version.os}/{version.arch}"
    if node.version == version.version:
        return f"version: already runs {version.component} {version.version}"
    if held_by is not None:
        return f"busy: held by the running rollout {held_by}"
    return None


def _why_none(version: Version, ineligible: Sequence[IneligibleNode], targets: int) -> str:
    what = f"{version.component} {version.version} ({version.os}/{version.arch})"
    if not targets:
        return f"target: names no node; nothing to deploy {what} to"
    kinds = Counter(node.reason.split(":", 1)[0] for node in ineligible)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    first = ineligible[0]
    return f"target: no node can take {what} ({summary}); e.g. {first.name}: {first.reason}"


def _waves(request: DeployRequest, nodes: Sequence[NodeFacts]) -> list[list[NodeFacts]]:
    if request.strategy == "all":
        return [list(nodes)]
    first = request.canary_size if request.strategy == "canary" else request.batch_size
    waves = [list(nodes[:first])]
    size = request.batch_size
    waves += [list(nodes[i : i + size]) for i in range(first, len(nodes), size)]
    return waves


def _records(
    rollout: Rollout, waves: Sequence[Sequence[NodeFacts]], now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "batch_id": rollout.batch_id,
            "node_id": node.id,
            "component": rollout.component,
            "from_version": node.version,
            "to_version": rollout.version,
            "status": "pending",
            "progress": 0,
            "wave": number,
            "created_by": rollout.created_by,
            "created_at": now,
        }
        for number, wave in enumerate(waves, start=1)
        for node in wave
    ]


def download_url(base_url: str, version_id: int) -> str:
    return f"{base_url}/api/v1/versions/{version_id}/download"


async def send_wave(
    session: AsyncSession,
    bus: CommandBus,
    rollout: Rollout,
    version: Version,
    wave: int,
    base_url: str,
    now: datetime,
) -> int:
    """One `update` order per pending record of the wave, in the outbox, in the caller's
    transaction: the wave starts exactly when its orders exist. Returns how many were sent."""
    await repository.fail_orphans(session, rollout.batch_id, wave, now)
    records = await repository.wave_records(session, rollout.batch_id, wave)
    ttl = rollout.expires_at - now
    if not records or ttl <= timedelta(0):
        return 0  # nothing to send; expired records are failed by the orchestrator
    assert version.manifest is not None  # checked when the rollout was made
    manifest = Manifest.model_validate_json(version.manifest)
    url = download_url(base_url, version.id)
    record_of: Mapping[int, int] = {node_id: record_id for record_id, node_id in records}

    def order(node_id: int) -> dict[str, Any]:
        return UpdateOrder(
            record_id=record_of[node_id],
            manifest=manifest,
            signature=version.signature,
            download_url=url,
            rollback=False,
        ).model_dump(mode="json")

    node_ids = [node_id for _, node_id in records]
    ids = await command_service.send(
        session, bus, node_ids, "update", order, ttl, created_by=rollout.created_by
    )
    await repository.set_commands(
        session, {record_of[node]: cid for node, cid in zip(node_ids, ids, strict=True)}
    )
    return len(ids)
