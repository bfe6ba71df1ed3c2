"""SQL for nodes, node groups, their tag and label side tables, events and configuration.

Every write of `nodes` is here. Status changes go through `states.py`: each UPDATE of the
status names the states it may move a node from.

Filters are built here as conditions on `nodes` and combined by the service. Tags and labels
are matched through `node_tags` / `node_labels` (indexed), never through the JSON columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from opscaffold.manager.kit.sql import contains_text, upsert
from opscaffold.manager.models import (
    Node,
    NodeConfig,
    NodeEvent,
    NodeGroup,
    NodeLabel,
    NodeMetric,
    NodeTag,
    node_metrics_5m,
)
from opscaffold.manager.node.schemas import distinct_casefold, tag_key
from opscaffold.manager.node.states import sources

Condition = ColumnElement[bool]
ConfigScope = Literal["group", "node"]
# Bound parameters per statement stay well below every driver's limit (asyncpg: 32767).
CHUNK = 5000
# What the list may be sorted by. Each sorts the same on every database: hostnames ignore
# case (MySQL's collation would, PostgreSQL's and SQLite's would not) and statuses go online,
# offline, unknown (MySQL would follow its ENUM, the others the alphabet).
SORTABLE: dict[str, ColumnElement[Any]] = {
    "id": Node.id.expression,
    "hostname": sa.func.lower(Node.hostname),
    "ip": Node.ip.expression,
    "status": sa.case({"online": 0, "offline": 1}, value=Node.status, else_=2),
    "last_heartbeat": Node.last_heartbeat.expression,
    "created_at": Node.created_at.expression,
    "updated_at": Node.updated_at.expression,
}
NULLABLE_SORT = frozenset({"last_heartbeat"})
ADDRESS_PART = re.compile(r"[0-9A-Fa-f.:]+")  # what a piece of an IPv4 or IPv6 address is made of


def chunks(values: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# -- side tables --------------------------------------------------------------------------
async def replace_tags(session: AsyncSession, node_id: int, tags: Sequence[str]) -> None:
    """Make `node_tags` hold exactly these tags for the node (delete, then insert), folded."""
    await session.execute(sa.delete(NodeTag).where(NodeTag.node_id == node_id))
    rows = [{"node_id": node_id, "tag": tag_key(tag)} for tag in distinct_casefold(list(tags))]
    if rows:
        await session.execute(sa.insert(NodeTag), rows)


async def replace_labels(session: AsyncSession, node_id: int, labels: Mapping[str, str]) -> None:
    """Make `node_labels` hold exactly these labels for the node (delete, then insert)."""
    await session.execute(sa.delete(NodeLabel).where(NodeLabel.node_id == node_id))
    keys = distinct_casefold(list(labels))
    rows = [{"node_id": node_id, "key": key, "value": labels[key]} for key in keys]
    if rows:
        await session.execute(sa.insert(NodeLabel), rows)


async def insert_labels(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Labels of nodes that have none yet (just created): one statement for them all."""
    if rows:
        await session.execute(sa.insert(NodeLabel), list(rows))


# -- filter conditions --------------------------------------------------------------------
def in_groups(group_ids: Sequence[int]) -> Condition:
    return Node.group_id.in_(group_ids)


def has_status(status: str) -> Condition:
    return Node.status == status


def matches_keyword(keyword: str) -> Condition:
    """Substring of hostname or ip, ignoring case.

    It scans every node, so it searches the ip only for a keyword that can be part of an
    address."""
    if ADDRESS_PART.fullmatch(keyword):
        return sa.or_(contains_text(Node.hostname, keyword), contains_text(Node.ip, keyword))
    return contains_text(Node.hostname, keyword)


def has_tag(tag: str) -> Condition:
    """Tagged `tag` in any letter case, on every database (node_tags holds folded tags)."""
    return Node.id.in_(sa.select(NodeTag.node_id).where(NodeTag.tag == tag_key(tag)))


def has_any_tag(tags: Sequence[str]) -> Condition:
    keys = list(dict.fromkeys(tag_key(tag) for tag in tags))
    return Node.id.in_(sa.select(NodeTag.node_id).where(NodeTag.tag.in_(keys)))


def has_label(key: str, value: str) -> Condition:
    return Node.id.in_(
        sa.select(NodeLabel.node_id).where(NodeLabel.key == key, NodeLabel.value == value)
    )


def is_one_of(node_ids: Sequence[int]) -> Condition:
    return Node.id.in_(node_ids)


def order_by(sort: str) -> list[sa.ColumnElement[Any]]:
    """`sort` is a SORTABLE name, `-` first for descending; the id breaks ties."""
    name = sort.removeprefix("-")
    column = SORTABLE[name]
    keys: list[sa.ColumnElement[Any]] = []
    if name in NULLABLE_SORT:
        keys.append(column.is_(None))  # NULLs last everywhere (MySQL has no NULLS LAST)
    descending = sort.startswith("-")
    keys.append(column.desc() if descending else column.asc())
    if name != "id":
        keys.append(Node.id.desc() if descending else Node.id.asc())
    return keys


# -- nodes --------------------------------------------------------------------------------
async def get(session: AsyncSession, node_id: int, *, for_update: bool = False) -> Node | None:
    return await session.get(Node, node_id, with_for_update=for_update)


async def exists(session: AsyncSession, node_id: int) -> bool:
    return (await session.scalar(sa.select(Node.id).where(Node.id == node_id))) is not None


async def count(session: AsyncSession, conditions: Sequence[Condition]) -> int:
    stmt = sa.select(sa.func.count()).select_from(Node).where(*conditions)
    return int(await session.scalar(stmt) or 0)


async def page(
    session: AsyncSession,
    conditions: Sequence[Condition],
    sort: str,
    *,
    offset: int,
    limit: int,
) -> Sequence[Node]:
    """One page of nodes. The page's ids are chosen first and only their rows are read: MySQL
    would otherwise read every candidate's whole row (JSON columns included) while filtering
    and sorting, three times the work of a substring search."""
    ids = (
        sa.select(Node.id)
        .where(*conditions)
        .order_by(*order_by(sort))
        .offset(offset)
        .limit(limit)
        .subquery("page")
    )
    stmt = sa.select(Node).join(ids, ids.c.id == Node.id).order_by(*order_by(sort))
    return (await session.scalars(stmt)).all()


async def ids_where(session: AsyncSession, conditions: Sequence[Condition]) -> list[int]:
    stmt = sa.select(Node.id).where(*conditions).order_by(Node.id)
    return list(await session.scalars(stmt))


async def placements(
    session: AsyncSession, conditions: Sequence[Condition]
) -> dict[int, int | None]:
    """Node id → group id of the nodes matching `conditions`."""
    rows = await session.execute(sa.select(Node.id, Node.group_id).where(*conditions))
    return {node_id: group_id for node_id, group_id in rows}


async def delete(session: AsyncSession, node_id: int) -> None:
    """Delete a node. Credentials, commands, tags, labels, events, the latest metrics and the
    agent go with it (ON DELETE CASCADE); metric history (raw and rollups: partitioned tables
    can have no foreign keys) and the node's configuration are deleted here, by primary key
    prefix."""
    await session.execute(sa.delete(NodeMetric).where(NodeMetric.node_id == node_id))
    await session.execute(sa.delete(node_metrics_5m).where(node_metrics_5m.c.node_id == node_id))
    await session.execute(
        sa.delete(NodeConfig).where(NodeConfig.scope == "node", NodeConfig.scope_id == node_id)
    )
    await session.execute(sa.delete(Node).where(Node.id == node_id))


# -- what daemons report, in whole batches -------------------------------------------------
async def insert_nodes(session: AsyncSession, rows: Sequence[dict[str, object]]) -> dict[str, int]:
    """Insert the nodes and return uuid → id (read back: MySQL has no INSERT … RETURNING)."""
    if not rows:
        return {}
    await session.execute(sa.insert(Node), list(rows))
    stmt = sa.select(Node.uuid, Node.id).where(Node.uuid.in_([r["uuid"] for r in rows]))
    return {str(node_uuid): int(node_id) for node_uuid, node_id in await session.execute(stmt)}


async def update_nodes(session: AsyncSession, rows: Sequence[dict[str, object]]) -> None:
    """Update by primary key: each row holds `id` and the columns to set (never the status)."""
    if rows:
        await session.execute(sa.update(Node), list(rows))


async def statuses(session: AsyncSession, node_ids: Iterable[int]) -> dict[int, str]:
    """Status of each node that still exists; deleted ones drop out."""
    rows = await session.execute(sa.select(Node.id, Node.status).where(Node.id.in_(list(node_ids))))
    return {node_id: status for node_id, status in rows}


async def set_online(session: AsyncSession, node_ids: Sequence[int], now: datetime) -> None:
    """Heard from now: one UPDATE for the whole batch."""
    if node_ids:
        await session.execute(
            sa.update(Node)
            .where(Node.id.in_(list(node_ids)), Node.status.in_(sources("online")))
            .values(last_heartbeat=now, status="online")
        )


def past_deadline(cutoff: datetime) -> sa.ColumnElement[bool]:
    """Online nodes whose last heartbeat is older than `cutoff`, and nodes that enrolled
    before it and were never heard from since (their deadline runs from enrolling)."""
    return sa.or_(
        sa.and_(Node.status == "online", Node.last_heartbeat < cutoff),
        sa.and_(
            Node.status == "unknown",
            sa.func.coalesce(Node.last_heartbeat, Node.created_at) < cutoff,
        ),
    )


async def lock_past_deadline(session: AsyncSession, cutoff: datetime) -> dict[int, str]:
    """Node id → status of the nodes past their deadline, locked until the commit."""
    stale = sa.select(Node.id, Node.status).where(past_deadline(cutoff)).with_for_update()
    return {node_id: status for node_id, status in await session.execute(stale)}


async def set_offline(session: AsyncSession, node_ids: Sequence[int], cutoff: datetime) -> None:
    """Set-based; the deadline is checked again, so a node heard from meanwhile stays."""
    if node_ids:
        await session.execute(
            sa.update(Node)
            .where(
                Node.id.in_(list(node_ids)),
                Node.status.in_(sources("offline")),
                past_deadline(cutoff),
            )
            .values(status="offline")
        )


async def add_events(
    session: AsyncSession,
    node_ids: Sequence[int],
    event: str,
    from_status: Mapping[int, str],
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """One `node_events` row per node, in one statement."""
    if node_ids:
        rows = [
            {
                "node_id": node_id,
                "event": event,
                "from_status": from_status.get(node_id),
                "to_status": event,
                "at": at,
                "detail": detail,
            }
            for node_id in node_ids
        ]
        await session.execute(sa.insert(NodeEvent), rows)


async def events_page(
    session: AsyncSession, node_id: int, *, offset: int, limit: int
) -> tuple[int, Sequence[NodeEvent]]:
    where = NodeEvent.node_id == node_id
    total = await session.scalar(sa.select(sa.func.count()).select_from(NodeEvent).where(where))
    stmt = (
        sa.select(NodeEvent)
        .where(where)
        .order_by(NodeEvent.at.desc(), NodeEvent.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total or 0), (await session.scalars(stmt)).all()


# -- groups -------------------------------------------------------------------------------
async def all_groups(session: AsyncSession) -> Sequence[NodeGroup]:
    stmt = sa.select(NodeGroup).order_by(NodeGroup.sort_order, NodeGroup.id)
    return (await session.scalars(stmt)).all()


async def group_edges(
    session: AsyncSession, *, for_update: bool = False
) -> list[tuple[int, int | None]]:
    """(id, parent id) of every group, in display order: all a tree walk needs.

    `for_update` locks them all, so that two concurrent moves cannot together make a cycle
    that each alone would not."""
    stmt = sa.select(NodeGroup.id, NodeGroup.parent_id).order_by(NodeGroup.sort_order, NodeGroup.id)
    if for_update:
        stmt = stmt.with_for_update()
    return [(group_id, parent_id) for group_id, parent_id in await session.execute(stmt)]


async def get_group(
    session: AsyncSession, group_id: int, *, lock: Literal["update", "share"] | None = None
) -> NodeGroup | None:
    stmt = sa.select(NodeGroup).where(NodeGroup.id == group_id)
    if lock is not None:
        stmt = stmt.with_for_update(read=lock == "share")
    return (await session.scalars(stmt)).first()


async def group_names(session: AsyncSession, group_ids: Sequence[int]) -> dict[int, str]:
    """Names of the groups of a page of nodes, in one query."""
    if not group_ids:
        return {}
    rows = await session.execute(
        sa.select(NodeGroup.id, NodeGroup.name).where(NodeGroup.id.in_(group_ids))
    )
    return {group_id: name for group_id, name in rows}


async def sibling_names(
    session: AsyncSession, parent_id: int | None, *, exclude_id: int = 0
) -> list[str]:
    """The names of the groups under `parent_id` (a group has tens of children, not more)."""
    parent = (
        NodeGroup.parent_id.is_(None) if parent_id is None else NodeGroup.parent_id == parent_id
    )
    stmt = sa.select(NodeGroup.name).where(parent, NodeGroup.id != exclude_id)
    return list(await session.scalars(stmt))


async def add_group(session: AsyncSession, group: NodeGroup) -> NodeGroup:
    session.add(group)
    await session.flush()
    return group


async def group_contents(session: AsyncSession, group_id: int) -> tuple[int, int]:
    """(nodes directly in the group, child groups)."""
    nodes = await session.scalar(
        sa.select(sa.func.count()).select_from(Node).where(Node.group_id == group_id)
    )
    children = await session.scalar(
        sa.select(sa.func.count()).select_from(NodeGroup).where(NodeGroup.parent_id == group_id)
    )
    return int(nodes or 0), int(children or 0)


async def delete_group(session: AsyncSession, group: NodeGroup) -> None:
    await session.execute(
        sa.delete(NodeConfig).where(NodeConfig.scope == "group", NodeConfig.scope_id == group.id)
    )
    await session.delete(group)
    await session.flush()


# -- configuration ------------------------------------------------------------------------
async def get_config(session: AsyncSession, scope: ConfigScope, scope_id: int) -> dict[str, str]:
    stmt = sa.select(NodeConfig.config).where(
        NodeConfig.scope == scope, NodeConfig.scope_id == scope_id
    )
    return dict(await session.scalar(stmt) or {})


async def set_config(
    session: AsyncSession,
    scope: ConfigScope,
    scope_id: int,
    config: Mapping[str, str],
    *,
    updated_by: int | None,
    now: datetime,
) -> None:
    """Replace one level's map; an empty map removes the level."""
    if not config:
        await session.execute(
            sa.delete(NodeConfig).where(NodeConfig.scope == scope, NodeConfig.scope_id == scope_id)
        )
        return
    stmt = upsert(
        session,
        NodeConfig,
        ["scope", "scope_id"],
        lambda new: {c: new[c] for c in ("config", "updated_by", "updated_at")},
    )
    row = {
        "scope": scope,
        "scope_id": scope_id,
        "config": dict(config),
        "updated_by": updated_by,
        "updated_at": now,
    }
    await session.execute(stmt, row)


async def group_configs(session: AsyncSession) -> dict[int, dict[str, str]]:
    """Every group's map: at most one row per group, and any node may inherit from any group."""
    rows = await session.execute(
        sa.select(NodeConfig.scope_id, NodeConfig.config).where(NodeConfig.scope == "group")
    )
    return {group_id: dict(config) for group_id, config in rows}


async def node_configs(session: AsyncSession, node_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    found: dict[int, dict[str, str]] = {}
    for part in chunks(node_ids):
        rows = await session.execute(
            sa.select(NodeConfig.scope_id, NodeConfig.config).where(
                NodeConfig.scope == "node", NodeConfig.scope_id.in_(part)
            )
        )
        found.update({node_id: dict(config) for node_id, config in rows})
    return found
