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
from opscaffold.manager.models.release import ACTIVE_ROLLOUT_STATUSES
from opscaffold.manager.node import service as node_service
from opscaffold.manager.node.repository import chunks
from opscaffold.manager.rollout import repository
from opscaffold.manager.rollout import service as rollout_service
from opscaffold.manager.rollout.repository import NodeFacts
from opscaffold.manager.rollout.schemas import (
    DeployPlan,
    DeployRequest,
    IneligibleNode,
    PlannedNode,
    RollbackRequest,
    RollbackResult,
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
        batches=[[_planned(n) for n in wave] for wave in waves],
        ineligible=ineligible,
    )
    if batch_id is None:
        return plan
    rollout = _new_rollout(
        batch_id,
        version,
        strategy=request.strategy,
        batch_size=request.batch_size,
        max_failures=request.max_failures,
        canary_size=request.canary_size,
        bake_seconds=request.bake_seconds,
        total_waves=len(waves),
        wait_seconds=request.expires_in_seconds,
        created_by=created_by,
        now=now,
    )
    placed = [[(node.id, node.version) for node in wave] for wave in waves]
    await _launch(session, bus, rollout, version, placed, base_url, now)
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


def _new_rollout(
    batch_id: str,
    version: Version,
    *,
    strategy: str,
    batch_size: int,
    max_failures: int,
    canary_size: int,
    bake_seconds: int,
    total_waves: int,
    wait_seconds: int,
    created_by: int,
    now: datetime,
    rollback_of: str | None = None,
) -> Rollout:
    return Rollout(
        batch_id=batch_id,
        component=version.component,
        version_id=version.id,
        version=version.version,
        strategy=strategy,
        batch_size=batch_size,
        max_failures=max_failures,
        canary_size=canary_size,
        bake_seconds=bake_seconds,
        total_waves=total_waves,
        current_wave=1,
        status="running",
        wait_seconds=wait_seconds,
        expires_at=now + timedelta(seconds=wait_seconds),
        created_by=created_by,
        created_at=now,
        updated_at=now,
        rollback_of=rollback_of,
    )


async def _launch(
    session: AsyncSession,
    bus: CommandBus,
    rollout: Rollout,
    version: Version,
    waves: Sequence[Sequence[tuple[int, str | None]]],
    base_url: str,
    now: datetime,
) -> None:
    """Record the rollout and a record per node (node id, version it runs, wave by wave),
    and send the first wave's orders, all in the caller's transaction."""
    await repository.add_rollout(session, rollout)
    await repository.insert_records(session, _records(rollout, waves, now))
    await send_wave(session, bus, rollout, version, 1, base_url, now, rollout.expires_at)


def _records(
    rollout: Rollout, waves: Sequence[Sequence[tuple[int, str | None]]], now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "batch_id": rollout.batch_id,
            "node_id": node_id,
            "component": rollout.component,
            "from_version": running,
            "to_version": rollout.version,
            "status": "pending",
            "progress": 0,
            "wave": number,
            "created_by": rollout.created_by,
            "created_at": now,
        }
        for number, wave in enumerate(waves, start=1)
        for node_id, running in wave
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
    expires_at: datetime,
) -> int:
    """One `update` order per pending record of the wave, in the outbox, in the caller's
    transaction: the wave starts exactly when its orders exist; they wait for offline nodes
    until `expires_at`. Returns how many were sent."""
    await repository.fail_orphans(session, rollout.batch_id, wave, now)
    records = await repository.wave_records(session, rollout.batch_id, wave)
    ttl = expires_at - now
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
            rollback=rollout.rollback_of is not None,
        ).model_dump(mode="json")

    node_ids = [node_id for _, node_id in records]
    ids = await command_service.send(
        session, bus, node_ids, "update", order, ttl, created_by=rollout.created_by, now=now
    )
    await repository.set_commands(
        session, {record_of[node]: cid for node, cid in zip(node_ids, ids, strict=True)}
    )
    return len(ids)


async def rollback(
    session: AsyncSession,
    bus: CommandBus,
    batch_id: str,
    request: RollbackRequest,
    base_url: str,
    created_by: int,
    now: datetime,
) -> RollbackResult:
    """Take the nodes a rollout updated back to the versions they ran before: the rollout is
    cancelled if still active, then one rollout of rollback orders per version to go back to,
    each sent at once. A node whose earlier version has no package here is left, with why."""
    original = await rollout_service.get_rollout(session, batch_id, locked=True)
    if original.status in ACTIVE_ROLLOUT_STATUSES:
        await rollout_service.cancel(session, batch_id, now)
    target = await version_service.get(session, original.version_id)
    await version_repository.lock_component(session, original.component)
    by_version: dict[str, list[tuple[int, str]]] = {}
    ineligible: list[IneligibleNode] = []
    for node_id, name, before in await repository.updated_nodes(session, batch_id):
        if before is None:
            reason = "version: the version it ran before is not known"
            ineligible.append(IneligibleNode(id=node_id, name=name, reason=reason))
        else:
            by_version.setdefault(before, []).append((node_id, name))
    batch_ids: list[str] = []
    total = 0
    platform = version_service.platform_of(target)
    for before, nodes in sorted(by_version.items()):
        version = await version_repository.find(session, platform, before)
        if version is None or not version.manifest:
            reason = f"package: no signed package of {target.component} {before} is here"
            ineligible += [IneligibleNode(id=n, name=name, reason=reason) for n, name in nodes]
            continue
        batch_ids.append(
            await _start_rollback(
                session, bus, original, version, nodes, request, base_url, created_by, now
            )
        )
        total += len(nodes)
    if not batch_ids:
        raise NoEligibleNodes(
            "batch_id: no node of this rollout can be rolled back"
            + (f" (e.g. {ineligible[0].name}: {ineligible[0].reason})" if ineligible else "")
        )
    return RollbackResult(batch_ids=batch_ids, total_nodes=total, ineligible=ineligible)


async def _start_rollback(
    session: AsyncSession,
    bus: CommandBus,
    original: Rollout,
    version: Version,
    nodes: Sequence[tuple[int, str]],
    request: RollbackRequest,
    base_url: str,
    created_by: int,
    now: datetime,
) -> str:
    rollout = _new_rollout(
        str(uuid.uuid4()),
        version,
        strategy="all",
        batch_size=len(nodes),
        max_failures=len(nodes),  # going back: every node is tried whatever the others do
        canary_size=1,
        bake_seconds=0,
        total_waves=1,
        wait_seconds=request.expires_in_seconds,
        created_by=created_by,
        now=now,
        rollback_of=original.batch_id,
    )
    placed = [[(node_id, original.version) for node_id, _ in nodes]]
    await _launch(session, bus, rollout, version, placed, base_url, now)
    return rollout.batch_id
