"""SQL of alert rules, alerts, their conditions and silences."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.kit.sql import upsert
from opscaffold.manager.models import (
    Agent,
    Alert,
    AlertCondition,
    AlertEvaluator,
    AlertRule,
    AlertSilence,
    Node,
    NodeMetricLatest,
    NodeTag,
)
from opscaffold.manager.node.schemas import tag_key

CHUNK = 500  # ids or keys per IN list, rows per multi-row INSERT
RULES_PER_QUERY = 100  # SQLite allows 500 terms in a compound SELECT
EVALUATOR_ROW = 1
# Bulk writes leave the session's loaded objects as they are: the evaluation reads none of them
# again, and matching each statement against every loaded condition would cost more than it.
BULK = {"synchronize_session": False}
T = TypeVar("T")


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# -- rules ------------------------------------------------------------------------------------
async def get_rule(
    session: AsyncSession, rule_id: int, *, for_update: bool = False
) -> AlertRule | None:
    return await session.get(AlertRule, rule_id, with_for_update=for_update)


async def page_rules(
    session: AsyncSession, *, offset: int, limit: int
) -> tuple[int, list[AlertRule]]:
    total = int(await session.scalar(sa.select(sa.func.count()).select_from(AlertRule)) or 0)
    stmt = sa.select(AlertRule).order_by(AlertRule.id).offset(offset).limit(limit)
    return total, list(await session.scalars(stmt))


async def enabled_rules(session: AsyncSession) -> list[AlertRule]:
    stmt = sa.select(AlertRule).where(AlertRule.status == "enabled").order_by(AlertRule.id)
    return list(await session.scalars(stmt))


# -- the evaluator's lock ---------------------------------------------------------------------
async def take_evaluator(session: AsyncSession, now: datetime) -> bool:
    """Lock the evaluator's row until the transaction ends and move its clock to `now`;
    False (and nothing locked for long) when an evaluation at a later time has been made.

    The first statement of the evaluation is this write, so the reads after it, on every
    database, see what the evaluation that held the lock before committed."""
    await session.execute(
        upsert(session, AlertEvaluator, ["id"], None).values(id=EVALUATOR_ROW, evaluated_at=None)
    )
    result = await session.execute(
        sa.update(AlertEvaluator)
        .where(
            AlertEvaluator.id == EVALUATOR_ROW,
            sa.or_(AlertEvaluator.evaluated_at.is_(None), AlertEvaluator.evaluated_at <= now),
        )
        .values(evaluated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- what holds now ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One rule as the evaluator runs it: its condition and the nodes it looks at."""

    rule_id: int
    metric: str
    operator: str
    threshold: float
    target_type: str
    node_ids: Sequence[int] = ()  # node targets
    group_ids: Sequence[int] = ()  # group targets, sub-groups included
    tags: Sequence[str] = ()  # tag targets


_COMPARE = {
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
}
LATEST = NodeMetricLatest.__table__


def _target(check: RuleCheck) -> list[sa.ColumnElement[bool]]:
    if check.target_type == "group":
        return [Node.group_id.in_(list(check.group_ids))]
    if check.target_type == "tag":
        keys = sorted({tag_key(t) for t in check.tags})
        return [Node.id.in_(sa.select(NodeTag.node_id).where(NodeTag.tag.in_(keys)))]
    if check.target_type == "node":
        return [Node.id.in_(list(check.node_ids))]
    return []


def _holds(check: RuleCheck, fresh_after: datetime) -> sa.Select[int, int, Any]:
    rule = sa.literal(check.rule_id, sa.BigInteger).label("rule_id")
    one = sa.literal_column("1", sa.Integer).label("value")
    if check.metric == "node_offline":
        return sa.select(rule, Node.id, one).where(Node.status == "offline", *_target(check))
    if check.metric == "agent_not_running":
        return (
            sa.select(rule, Node.id, one)
            .join(Agent, Agent.node_id == Node.id)
            .where(
                Node.status == "online",
                Agent.status.in_(("stopped", "error")),
                *_target(check),
            )
        )
    column = LATEST.c[check.metric]
    threshold = sa.literal(check.threshold, sa.Float)
    return (
        sa.select(rule, Node.id, column.label("value"))
        .join(LATEST, LATEST.c.node_id == Node.id)
        .where(
            _COMPARE[check.operator](column, threshold),
            LATEST.c.timestamp >= fresh_after,
            *_target(check),
        )
    )


async def holding(
    session: AsyncSession, checks: Sequence[RuleCheck], fresh_after: datetime
) -> dict[tuple[int, int], float]:
    """(rule id, node id) → value, for every rule and node whose condition holds now: one
    statement per hundred rules, whatever the number of nodes. Metrics reported before
    `fresh_after` are no data, so no metric condition holds on them."""
    found: dict[tuple[int, int], float] = {}
    for part in chunks(checks, RULES_PER_QUERY):
        selects = [_holds(check, fresh_after) for check in part]
        stmt = selects[0] if len(selects) == 1 else sa.union_all(*selects)
        for rule_id, node_id, value in await session.execute(stmt):
            found[int(rule_id), int(node_id)] = float(value)
    return found


# -- conditions -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Condition:
    """An `alert_conditions` row, read as plain values (an evaluation may read many)."""

    key: str
    rule_id: int
    node_id: int
    since: datetime
    fired_at: datetime | None
    cleared_at: datetime | None


async def conditions(session: AsyncSession) -> list[Condition]:
    """Every condition pending or firing: as many as there are ongoing problems."""
    c = AlertCondition
    rows = await session.execute(
        sa.select(c.key, c.rule_id, c.node_id, c.since, c.fired_at, c.cleared_at)
    )
    return [Condition(str(k), int(r), int(n), s, f, cl) for k, r, n, s, f, cl in rows]


async def add_conditions(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    for part in chunks(rows):
        await session.execute(sa.insert(AlertCondition), list(part))


async def delete_conditions(session: AsyncSession, keys: Sequence[str]) -> None:
    for part in chunks(keys):
        await session.execute(
            sa.delete(AlertCondition).where(AlertCondition.key.in_(part)), execution_options=BULK
        )


async def update_conditions(
    session: AsyncSession, keys: Sequence[str], values: Mapping[str, Any]
) -> None:
    for part in chunks(keys):
        await session.execute(
            sa.update(AlertCondition).where(AlertCondition.key.in_(part)).values(**values),
            execution_options=BULK,
        )


# -- alerts -----------------------------------------------------------------------------------
async def add_alerts(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert firing alerts (each with its open_key); returns open_key → alert id."""
    ids: dict[str, int] = {}
    for part in chunks(rows):
        await session.execute(sa.insert(Alert), list(part))
        keys = [row["open_key"] for row in part]
        found = await session.execute(
            sa.select(Alert.open_key, Alert.id).where(Alert.open_key.in_(keys))
        )
        ids.update({str(key): int(alert_id) for key, alert_id in found})
    return ids


async def resolve_alerts(
    session: AsyncSession, keys: Sequence[str], now: datetime
) -> dict[str, int]:
    """Resolve the open alerts of these conditions; returns open_key → id of those resolved."""
    resolved: dict[str, int] = {}
    for part in chunks(keys):
        found = await session.execute(
            sa.select(Alert.open_key, Alert.id).where(Alert.open_key.in_(part))
        )
        resolved.update({str(key): int(alert_id) for key, alert_id in found})
        await session.execute(
            sa.update(Alert)
            .where(Alert.open_key.in_(part), Alert.status == "firing")
            .values(status="resolved", resolved_at=now, open_key=None),
            execution_options=BULK,
        )
    return resolved


@dataclass(frozen=True, slots=True)
class AlertInContext:
    """An alert with its rule's name and its node's hostname, group and tags (what silences
    match on); the rule or the node may be gone."""

    alert: Alert
    rule_name: str | None
    hostname: str | None
    group_id: int | None
    tags: list[str]


async def notice_rows(
    session: AsyncSession, alert_ids: Sequence[int]
) -> list[tuple[Alert, AlertRule | None, str | None]]:
    """Alerts with their rule (gone once deleted) and node name, to notify of."""
    found: list[tuple[Alert, AlertRule | None, str | None]] = []
    for part in chunks(alert_ids):
        stmt = (
            sa.select(Alert, AlertRule, Node.hostname)
            .outerjoin(AlertRule, AlertRule.id == Alert.rule_id)
            .outerjoin(Node, Node.id == Alert.node_id)
            .where(Alert.id.in_(part))
        )
        found += [(row[0], row[1], row[2]) for row in await session.execute(stmt)]
    return found


def _alerts() -> sa.Select[Alert, str, str, int | None, list[str] | None]:
    return (
        sa.select(Alert, AlertRule.name, Node.hostname, Node.group_id, Node.tags)
        .outerjoin(AlertRule, AlertRule.id == Alert.rule_id)
        .outerjoin(Node, Node.id == Alert.node_id)
    )


def _in_context(row: Any) -> AlertInContext:
    alert, rule_name, hostname, group_id, tags = row
    return AlertInContext(alert, rule_name, hostname, group_id, list(tags or []))


@dataclass(frozen=True, slots=True)
class AlertFilter:
    status: str | None = None
    severity: str | None = None
    node_id: int | None = None
    rule_id: int | None = None
    since: datetime | None = None  # fired at or after
    until: datetime | None = None  # fired before


def _where(filters: AlertFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if filters.status is not None:
        where.append(Alert.status == filters.status)
    if filters.severity is not None:
        where.append(Alert.severity == filters.severity)
    if filters.node_id is not None:
        where.append(Alert.node_id == filters.node_id)
    if filters.rule_id is not None:
        where.append(Alert.rule_id == filters.rule_id)
    if filters.since is not None:
        where.append(Alert.fired_at >= filters.since)
    if filters.until is not None:
        where.append(Alert.fired_at < filters.until)
    return where


async def page_alerts(
    session: AsyncSession, filters: AlertFilter, *, offset: int, limit: int
) -> tuple[int, list[AlertInContext]]:
    """A page of alerts, newest first, in context."""
    where = _where(filters)
    total = int(
        await session.scalar(sa.select(sa.func.count()).select_from(Alert).where(*where)) or 0
    )
    if total <= offset:
        return total, []
    stmt = _alerts().where(*where).order_by(Alert.fired_at.desc(), Alert.id.desc())
    rows = await session.execute(stmt.offset(offset).limit(limit))
    return total, [_in_context(row) for row in rows]


async def get_alert(session: AsyncSession, alert_id: int) -> AlertInContext | None:
    row = (await session.execute(_alerts().where(Alert.id == alert_id))).first()
    return None if row is None else _in_context(row)


async def acknowledge(session: AsyncSession, alert_id: int, user_id: int, now: datetime) -> bool:
    """Mark the alert acknowledged, unless it already is (the first acknowledgement stays)."""
    result = await session.execute(
        sa.update(Alert)
        .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
        .values(acknowledged_by=user_id, acknowledged_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def alert_exists(session: AsyncSession, alert_id: int) -> bool:
    return await session.scalar(sa.select(Alert.id).where(Alert.id == alert_id)) is not None


# -- nodes, as silences see them --------------------------------------------------------------
async def node_places(
    session: AsyncSession, node_ids: Sequence[int]
) -> dict[int, tuple[int | None, list[str]]]:
    """Node id → (group id, tags) for these nodes."""
    places: dict[int, tuple[int | None, list[str]]] = {}
    ids = sorted(set(node_ids))
    for part in chunks(ids):
        rows = await session.execute(
            sa.select(Node.id, Node.group_id, Node.tags).where(Node.id.in_(part))
        )
        places.update({int(i): (g, list(t or [])) for i, g, t in rows})
    return places


# -- silences ---------------------------------------------------------------------------------
async def get_silence(
    session: AsyncSession, silence_id: int, *, for_update: bool = False
) -> AlertSilence | None:
    return await session.get(AlertSilence, silence_id, with_for_update=for_update)


def _active(now: datetime) -> list[sa.ColumnElement[bool]]:
    return [AlertSilence.starts_at <= now, AlertSilence.ends_at > now]


async def page_silences(
    session: AsyncSession, now: datetime, *, active: bool, offset: int, limit: int
) -> tuple[int, list[AlertSilence]]:
    where = _active(now) if active else []
    count = sa.select(sa.func.count()).select_from(AlertSilence).where(*where)
    total = int(await session.scalar(count) or 0)
    stmt = (
        sa.select(AlertSilence)
        .where(*where)
        .order_by(AlertSilence.ends_at.desc(), AlertSilence.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return total, list(await session.scalars(stmt))


async def active_silences(session: AsyncSession, now: datetime) -> list[AlertSilence]:
    stmt = sa.select(AlertSilence).where(*_active(now)).order_by(AlertSilence.id)
    return list(await session.scalars(stmt))
