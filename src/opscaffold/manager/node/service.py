"""Rules for nodes, node groups and their configuration; target resolution for rollouts and tasks.

Configuration has three levels: defaults (from Settings) ‹ groups, from the root down to the
node's own group ‹ the node. Whenever a change alters what a node's daemon should run with, a
`config` command carrying the node's new effective configuration is queued for it in the same
transaction.

A node's status moves only as `states.py` allows; what daemons report about their nodes
(enrolling, refreshing, being heard from) is written for whole batches at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.agent import repository as agent_repository
from opscaffold.manager.agent.schemas import AgentRead
from opscaffold.manager.command import repository as command_repository
from opscaffold.manager.command import service as command_service
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.command.states import CommandState
from opscaffold.manager.config import Settings
from opscaffold.manager.errors import (
    GroupAlreadyExists,
    GroupNotEmpty,
    GroupNotFound,
    InvalidArgument,
    NodeNotFound,
)
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import Node, NodeEvent, NodeGroup
from opscaffold.manager.node import config_keys, repository
from opscaffold.manager.node.repository import Condition, ConfigScope, chunks
from opscaffold.manager.node.schemas import (
    MAX_LABELS,
    MAX_TAGS,
    ConfigDelivery,
    EffectiveConfigRead,
    GroupCreate,
    GroupRead,
    GroupRef,
    GroupUpdate,
    NodeRead,
    NodeUpdate,
    distinct_casefold,
    parse_selector,
)
from opscaffold.manager.node.states import INITIAL
from opscaffold.manager.node.tree import GroupTree

# A daemon offline for longer learns its configuration from GetConfig when it comes back.
CONFIG_COMMAND_TTL = timedelta(hours=1)
TargetType = Literal["node", "group", "tag", "label", "all"]


@dataclass(frozen=True, slots=True)
class NodeFilter:
    group_id: int | None = None  # the group and all its sub-groups
    status: str | None = None
    keyword: str | None = None  # substring of hostname or ip
    tags: str | None = None  # comma-separated; a node must have all
    labels: Sequence[str] = ()  # selectors key=value; all must match
    sort: str = "id"


# -- nodes --------------------------------------------------------------------------------
async def list_nodes(
    session: AsyncSession, filters: NodeFilter, *, offset: int, limit: int
) -> tuple[int, list[NodeRead]]:
    """A page of nodes with their groups and agents: a fixed number of queries per page."""
    conditions = await _conditions(session, filters)
    total = await repository.count(session, conditions)
    if total <= offset:
        return total, []
    nodes = await repository.page(session, conditions, filters.sort, offset=offset, limit=limit)
    return total, await present(session, nodes)


async def _conditions(session: AsyncSession, filters: NodeFilter) -> list[Condition]:
    conditions: list[Condition] = []
    if filters.group_id is not None:
        tree = GroupTree(await repository.group_edges(session))
        if filters.group_id not in tree:
            raise GroupNotFound(f"group_id: group {filters.group_id} does not exist")
        conditions.append(repository.in_groups(tree.subtree(filters.group_id)))
    if filters.status:
        conditions.append(repository.has_status(filters.status))
    if filters.keyword:
        conditions.append(repository.matches_keyword(filters.keyword))
    conditions += [repository.has_tag(tag) for tag in split_tags(filters.tags)]
    if len(filters.labels) > MAX_LABELS:
        raise InvalidArgument(f"label: at most {MAX_LABELS} selectors")
    selectors = dict.fromkeys(parse_selector(s) for s in filters.labels)
    conditions += [repository.has_label(key, value) for key, value in selectors]
    return conditions


def split_tags(raw: str | None) -> list[str]:
    tags = list(dict.fromkeys(t.strip() for t in (raw or "").split(",") if t.strip()))
    if len(tags) > MAX_TAGS:
        raise InvalidArgument(f"tags: at most {MAX_TAGS} tags")
    return tags


async def present(session: AsyncSession, nodes: Sequence[Node]) -> list[NodeRead]:
    """Nodes with their group and agent, loaded in one query each for the whole batch."""
    group_ids = sorted({n.group_id for n in nodes if n.group_id is not None})
    names = await repository.group_names(session, group_ids)
    agents = await agent_repository.for_nodes(session, [n.id for n in nodes])
    reads = []
    for node in nodes:
        read = NodeRead.model_validate(node)
        if node.group_id in names:
            read.group = GroupRef(id=node.group_id, name=names[node.group_id])
        if (agent := agents.get(node.id)) is not None:
            read.agent = AgentRead.seen(agent, node.status)
        reads.append(read)
    return reads


async def get(session: AsyncSession, node_id: int) -> NodeRead:
    node = await repository.get(session, node_id)
    if node is None:
        raise NodeNotFound()
    return (await present(session, [node]))[0]


async def ensure_exists(session: AsyncSession, node_id: int) -> None:
    if not await repository.exists(session, node_id):
        raise NodeNotFound()


async def ensure_group_exists(session: AsyncSession, group_id: int) -> None:
    if await repository.get_group(session, group_id) is None:
        raise GroupNotFound()


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """Who changes what nodes run with, and how the outcome reaches their daemons: a change
    that alters a node's effective configuration queues a `config` command for it."""

    settings: Settings
    user_id: int
    bus: CommandBus


async def update(
    session: AsyncSession, node_id: int, data: NodeUpdate, change: ConfigChange
) -> NodeRead:
    """Apply the given fields. Tags and labels go to the JSON columns and the side tables in
    the same transaction; a move to another group re-sends the configuration if it changes."""
    node = await repository.get(session, node_id, for_update=True)
    if node is None:
        raise NodeNotFound()
    changes = data.model_fields_set
    old_group = node.group_id
    if "group_id" in changes and data.group_id != old_group:
        await _check_group_exists(session, data.group_id)
        node.group_id = data.group_id
    if "tags" in changes:
        node.tags = list(data.tags or [])
        await repository.replace_tags(session, node.id, node.tags)
    if "labels" in changes:
        node.labels = dict(data.labels or {})
        await repository.replace_labels(session, node.id, node.labels)
    node.updated_at = utcnow()
    await session.flush()
    if node.group_id != old_group:
        await _resend_after_move(session, node.id, old_group, node.group_id, change)
    return (await present(session, [node]))[0]


async def _resend_after_move(
    session: AsyncSession,
    node_id: int,
    old_group: int | None,
    new_group: int | None,
    change: ConfigChange,
) -> None:
    tree = GroupTree(await repository.group_edges(session))
    layers = await _layers(session, change.settings, [node_id])
    after = layers.merge(node_id, tree.ancestry(new_group)).config
    if layers.merge(node_id, tree.ancestry(old_group)).config != after:
        await _push(session, {node_id: after}, change)


async def _check_group_exists(session: AsyncSession, group_id: int | None) -> None:
    # A shared lock: a concurrent delete of the group waits for this assignment to commit.
    if group_id is not None and await repository.get_group(session, group_id, lock="share") is None:
        raise GroupNotFound(f"group_id: group {group_id} does not exist")


async def delete(session: AsyncSession, node_id: int) -> Node:
    """Delete a node with everything that belongs to it. Returns it (for the audit trail)."""
    node = await repository.get(session, node_id, for_update=True)
    if node is None:
        raise NodeNotFound()
    await repository.delete(session, node_id)
    return node


async def events(
    session: AsyncSession, node_id: int, *, offset: int, limit: int
) -> tuple[int, Sequence[NodeEvent]]:
    """The node's status transitions, newest first."""
    await ensure_exists(session, node_id)
    return await repository.events_page(session, node_id, offset=offset, limit=limit)


# -- what daemons report, for whole batches -----------------------------------------------
# (values, labels): the columns a daemon reports about its node (uuid among them), its labels
Reported = tuple[Mapping[str, Any], Mapping[str, str]]


async def create_reported(
    session: AsyncSession, nodes: Sequence[Reported], now: datetime
) -> dict[str, int]:
    """Create enrolling nodes (status `unknown`) with their labels and 'registered' events, in
    a fixed number of statements; uuid → node id."""
    created = await repository.insert_nodes(
        session,
        [
            {**values, "labels": labels, "status": INITIAL, "created_at": now, "updated_at": now}
            for values, labels in nodes
        ],
    )
    labels = [
        {"node_id": created[str(values["uuid"])], "key": key, "value": labels[key]}
        for values, labels in nodes
        for key in distinct_casefold(list(labels))
    ]
    await repository.insert_labels(session, labels)
    await repository.add_events(session, sorted(created.values()), "registered", {}, now)
    return created


async def update_reported(
    session: AsyncSession, changes: Mapping[int, Mapping[str, Any]], now: datetime
) -> None:
    """Write what daemons report anew about their nodes (node id → changed columns)."""
    # In id order, so that writers locking the same nodes lock them in the same order.
    rows = [{"id": node_id, **changes[node_id], "updated_at": now} for node_id in sorted(changes)]
    await repository.update_nodes(session, rows)


async def statuses(session: AsyncSession, node_ids: Iterable[int]) -> dict[int, str]:
    """Status of each of these nodes that still exists (a deleted one drops out)."""
    return await repository.statuses(session, node_ids)


async def heard_from(session: AsyncSession, statuses: Mapping[int, str], now: datetime) -> None:
    """The nodes (id → status as read) sent a heartbeat now: their deadline moves on and the
    ones that were not online come online, with the transition recorded."""
    if not statuses:
        return
    await repository.set_online(session, list(statuses), now)
    came_online = [node_id for node_id, status in statuses.items() if status != "online"]
    await repository.add_events(session, came_online, "online", statuses, now)


async def take_offline(session: AsyncSession, cutoff: datetime, now: datetime) -> list[int]:
    """Nodes not heard from since `cutoff` (or, never heard from, enrolled before it) go
    offline, set-based; returns their ids."""
    before = await repository.lock_past_deadline(session, cutoff)
    node_ids = list(before)
    await repository.set_offline(session, node_ids, cutoff)
    await repository.add_events(
        session, node_ids, "offline", before, now, {"reason": "heartbeat timeout"}
    )
    return node_ids


# -- groups -------------------------------------------------------------------------------
async def list_groups(session: AsyncSession, *, tree: bool) -> list[GroupRead]:
    """Every group by sort_order, then id; with `tree`, the top-level ones with their
    sub-groups nested (in the same order) under `children`."""
    groups = [GroupRead.model_validate(g) for g in await repository.all_groups(session)]
    if not tree:
        return groups
    by_id = {g.id: g for g in groups}
    walk = GroupTree((g.id, g.parent_id) for g in groups)
    for group_id in (g for root in walk.roots() for g in walk.subtree(root)):
        by_id[group_id].children = [by_id[c] for c in walk.children.get(group_id, [])]
    return [by_id[root] for root in walk.roots()]


async def create_group(session: AsyncSession, data: GroupCreate) -> NodeGroup:
    if data.parent_id is not None and not await repository.get_group(
        session, data.parent_id, lock="share"
    ):
        raise GroupNotFound(f"parent_id: group {data.parent_id} does not exist")
    if await _sibling_named(session, data.parent_id, data.name):
        raise GroupAlreadyExists()
    group = NodeGroup(
        name=data.name,
        description=data.description,
        parent_id=data.parent_id,
        sort_order=data.sort_order,
    )
    return await repository.add_group(session, group)


async def update_group(
    session: AsyncSession, group_id: int, data: GroupUpdate, change: ConfigChange
) -> NodeGroup:
    """Apply the given fields. A move re-sends the configuration of every node below the group
    whose effective configuration changes with it."""
    group = await repository.get_group(session, group_id, lock="update")
    if group is None:
        raise GroupNotFound()
    changes = data.model_fields_set
    moving = "parent_id" in changes and data.parent_id != group.parent_id
    name = data.name if data.name is not None else group.name
    parent_id = data.parent_id if moving else group.parent_id
    if (moving or name != group.name) and await _sibling_named(
        session, parent_id, name, exclude_id=group.id
    ):
        raise GroupAlreadyExists()
    if moving:
        await _move(session, group, data.parent_id, change)
    group.name = name
    if "description" in changes:
        group.description = data.description
    if data.sort_order is not None:
        group.sort_order = data.sort_order
    group.updated_at = utcnow()
    await session.flush()
    return group


async def _move(
    session: AsyncSession,
    group: NodeGroup,
    parent_id: int | None,
    change: ConfigChange,
) -> None:
    tree = GroupTree(await repository.group_edges(session, for_update=True))
    if parent_id is not None and parent_id not in tree:
        raise GroupNotFound(f"parent_id: group {parent_id} does not exist")
    below = tree.subtree(group.id)
    if parent_id in below:
        where = "itself" if parent_id == group.id else f"its own descendant (group {parent_id})"
        raise InvalidArgument(f"group {group.id} cannot be moved under {where}")
    group.parent_id = parent_id
    moved = tree.with_parent(group.id, parent_id)
    placements = await repository.placements(session, [repository.in_groups(below)])
    layers = await _layers(session, change.settings, list(placements))
    changed = {}
    for node_id, node_group in placements.items():
        after = layers.merge(node_id, moved.ancestry(node_group)).config
        if layers.merge(node_id, tree.ancestry(node_group)).config != after:
            changed[node_id] = after
    await _push(session, changed, change)


async def _sibling_named(
    session: AsyncSession, parent_id: int | None, name: str, *, exclude_id: int = 0
) -> bool:
    """Sibling groups' names differ in more than letter case, compared here rather than by
    the database, whose collations disagree (MariaDB also equates accents and blanks)."""
    folded = name.casefold()
    siblings = await repository.sibling_names(session, parent_id, exclude_id=exclude_id)
    return any(sibling.casefold() == folded for sibling in siblings)


async def delete_group(session: AsyncSession, group_id: int) -> NodeGroup:
    """Delete an empty group (no nodes, no child groups) and its configuration."""
    group = await repository.get_group(session, group_id, lock="update")
    if group is None:
        raise GroupNotFound()
    nodes, children = await repository.group_contents(session, group_id)
    if nodes or children:
        raise GroupNotEmpty(
            f"group '{group.name}' still has {nodes} node(s) and {children} child group(s); "
            "move or delete them first"
        )
    await repository.delete_group(session, group)
    return group


# -- configuration ------------------------------------------------------------------------
def default_node_config(settings: Settings) -> dict[str, str]:
    """The bottom level of every node's configuration."""
    node = settings.node
    return {
        "heartbeat_interval": str(int(node.heartbeat_interval.total_seconds())),
        "metric_interval": str(int(node.metric_interval.total_seconds())),
    }


@dataclass(frozen=True, slots=True)
class Merged:
    config: dict[str, str]
    sources: dict[str, str]  # key → "default", "group:<id>" or "node"


@dataclass(frozen=True, slots=True)
class _Layers:
    defaults: Mapping[str, str]
    groups: Mapping[int, Mapping[str, str]]
    nodes: Mapping[int, Mapping[str, str]]

    def merge(self, node_id: int, chain: Sequence[int]) -> Merged:
        """`chain` is the node's group and its ancestors, root first: the nearest wins."""
        levels: list[tuple[str, Mapping[str, str]]] = [("default", self.defaults)]
        levels += [(f"group:{g}", self.groups.get(g, {})) for g in chain]
        levels.append(("node", self.nodes.get(node_id, {})))
        config: dict[str, str] = {}
        sources: dict[str, str] = {}
        for source, values in levels:
            config.update(values)
            sources.update(dict.fromkeys(values, source))
        return Merged(config, sources)


async def _layers(session: AsyncSession, settings: Settings, node_ids: Sequence[int]) -> _Layers:
    groups = await repository.group_configs(session)
    nodes = await repository.node_configs(session, node_ids)
    return _Layers(
        default_node_config(settings),
        {g: config_keys.usable(f"group:{g}", c, settings) for g, c in groups.items()},
        {n: config_keys.usable(f"node:{n}", c, settings) for n, c in nodes.items()},
    )


async def _merged(session: AsyncSession, node_id: int, settings: Settings) -> Merged:
    placement = await repository.placements(session, [repository.is_one_of([node_id])])
    if node_id not in placement:
        raise NodeNotFound()
    tree = GroupTree(await repository.group_edges(session))
    layers = await _layers(session, settings, [node_id])
    return layers.merge(node_id, tree.ancestry(placement[node_id]))


async def effective_config(
    session: AsyncSession, node_id: int, settings: Settings
) -> dict[str, str]:
    """What the node's daemon should run with: node › nearest group up the tree › defaults."""
    return (await _merged(session, node_id, settings)).config


async def effective_configs(
    session: AsyncSession, node_ids: Sequence[int], settings: Settings
) -> dict[int, dict[str, str]]:
    """`effective_config` for many nodes in a fixed number of queries (per chunk of ids);
    nodes that do not exist are left out."""
    placements: dict[int, int | None] = {}
    for part in chunks(sorted(set(node_ids))):
        placements |= await repository.placements(session, [repository.is_one_of(part)])
    tree = GroupTree(await repository.group_edges(session))
    layers = await _layers(session, settings, list(placements))
    return {
        node_id: layers.merge(node_id, tree.ancestry(group_id)).config
        for node_id, group_id in placements.items()
    }


async def explain_config(
    session: AsyncSession, node_id: int, settings: Settings
) -> EffectiveConfigRead:
    """The effective configuration, where each key comes from, and whether the daemon has
    applied it (the latest `config` command and its state)."""
    merged = await _merged(session, node_id, settings)
    return EffectiveConfigRead(
        config=merged.config,
        sources=merged.sources,
        delivery=await _latest_delivery(session, node_id, merged.config),
    )


async def _latest_delivery(
    session: AsyncSession, node_id: int, effective: Mapping[str, str]
) -> ConfigDelivery | None:
    latest = await command_repository.newest_of_type(session, node_id, "config", 10)
    if not latest:
        return None
    # Times are stored to the second: among commands queued in the same second, the one
    # carrying the configuration now in force is the last change's.
    tied = [c for c in latest if c.created_at == latest[0].created_at]
    carries = [c for c in tied if c.payload.get("config") == effective]
    command = (carries or tied)[0]
    return ConfigDelivery(
        command_id=command.id,
        state=cast(CommandState, command.state),
        current=command.payload.get("config") == effective,
        error=command.error,
        created_at=command.created_at,
        done_at=command.done_at,
    )


async def get_config(session: AsyncSession, scope: ConfigScope, scope_id: int) -> dict[str, str]:
    """One level's own map (not merged)."""
    if scope == "node":
        await ensure_exists(session, scope_id)
    elif await repository.get_group(session, scope_id) is None:
        raise GroupNotFound()
    return await repository.get_config(session, scope, scope_id)


async def set_node_config(
    session: AsyncSession,
    node_id: int,
    config: Mapping[str, str],
    change: ConfigChange,
) -> int:
    """Replace the node's own map and send it its effective configuration. Returns 1."""
    await ensure_exists(session, node_id)
    config_keys.check(config, change.settings)
    await repository.set_config(
        session, "node", node_id, config, updated_by=change.user_id, now=utcnow()
    )
    effective = await effective_config(session, node_id, change.settings)
    await _push(session, {node_id: effective}, change)
    return 1


async def set_group_config(
    session: AsyncSession,
    group_id: int,
    config: Mapping[str, str],
    change: ConfigChange,
) -> int:
    """Replace the group's own map and send every node in its subtree its effective
    configuration. Returns how many nodes were sent one."""
    tree = GroupTree(await repository.group_edges(session))
    if group_id not in tree:
        raise GroupNotFound()
    config_keys.check(config, change.settings)
    await repository.set_config(
        session, "group", group_id, config, updated_by=change.user_id, now=utcnow()
    )
    placements = await repository.placements(
        session, [repository.in_groups(tree.subtree(group_id))]
    )
    layers = await _layers(session, change.settings, list(placements))
    configs = {
        node_id: layers.merge(node_id, tree.ancestry(node_group)).config
        for node_id, node_group in placements.items()
    }
    await _push(session, configs, change)
    return len(configs)


async def _push(
    session: AsyncSession, configs: Mapping[int, dict[str, str]], change: ConfigChange
) -> None:
    """Queue a `config` command per node, each with its own effective configuration."""
    node_ids = sorted(configs)
    for part in chunks(node_ids):
        await command_service.send(
            session,
            change.bus,
            part,
            "config",
            lambda node_id: {"config": configs[node_id]},
            ttl=CONFIG_COMMAND_TTL,
            created_by=change.user_id,
        )


# -- targets ------------------------------------------------------------------------------
async def resolve_target(
    session: AsyncSession, target_type: TargetType, values: Sequence[str]
) -> list[int]:
    """The ids of the nodes a target names, sorted.

    node: values are node ids (all must exist); group: group ids, each with its sub-groups;
    tag: nodes with any of the tags; label: selectors `key=value`, a node must match all;
    all: every node (values ignored). Raises InvalidArgument for malformed values, and
    NodeNotFound or GroupNotFound for a node or group that does not exist.
    """
    if target_type == "all":
        return await repository.ids_where(session, [])
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if not cleaned:
        raise InvalidArgument(f"target: a {target_type} target needs at least one value")
    if target_type == "node":
        return await _existing_nodes(session, _parse_ids(cleaned, "node"))
    if target_type == "group":
        return await repository.ids_where(session, [await _in_subtrees(session, cleaned)])
    if target_type == "tag":
        return await repository.ids_where(session, [repository.has_any_tag(cleaned)])
    if target_type == "label":
        selectors = [parse_selector(v) for v in cleaned]
        return await repository.ids_where(session, [repository.has_label(*s) for s in selectors])
    raise InvalidArgument(f"target: unknown target type '{target_type}'")


def _parse_ids(values: Sequence[str], kind: str) -> list[int]:
    try:
        ids = [int(v) for v in values]
    except ValueError:
        raise InvalidArgument(f"target: {kind} ids must be integers") from None
    if any(not 1 <= i < 2**63 for i in ids):
        raise InvalidArgument(f"target: {kind} ids must be positive")
    return ids


async def _existing_nodes(session: AsyncSession, node_ids: list[int]) -> list[int]:
    found: list[int] = []
    for part in chunks(node_ids):
        found += await repository.ids_where(session, [repository.is_one_of(part)])
    if missing := sorted(set(node_ids) - set(found)):
        raise NodeNotFound(f"target: no such node: {', '.join(map(str, missing[:10]))}")
    return sorted(found)


async def _in_subtrees(session: AsyncSession, values: Sequence[str]) -> Condition:
    tree = GroupTree(await repository.group_edges(session))
    group_ids = _parse_ids(values, "group")
    if missing := [g for g in group_ids if g not in tree]:
        raise GroupNotFound(f"target: no such group: {', '.join(map(str, missing[:10]))}")
    return repository.in_groups(sorted({g for root in group_ids for g in tree.subtree(root)}))
