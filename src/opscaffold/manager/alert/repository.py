"""SQL of alert rules, alerts, their conditions and silences."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from opscaffold.manager.models.alert import Threshold
from opscaffold.manager.node.schemas import tag_key

CHUNK = 500  # ids or keys per IN list, rows per multi-row INSERT
# An evaluation's writes by key or id: fewer, larger statements when tens of thousands of
# conditions move at once (under every database's limit of bound parameters).
KEYS_PER_STATEMENT = 1_000
RULES_PER_QUERY = 100  # SQLite allows 500 terms in a compound SELECT
EVALUATOR_ROW = 1
# Bulk writes leave the session's loaded objects as they are: the evaluation reads none of them
# again, and matching each statement against every loaded condition would cost more than it.
BULK = {"synchronize_session": False}
T = TypeVar("T")
AnySelect = sa.Select[*tuple[Any, ...]]


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


# -- evaluation -------------------------------------------------------------------------------
# An evaluation compares, in the database, what holds now with the conditions already pending
# or firing, and brings back only the (rule, node) pairs whose state changes: a steady fleet
# costs one pass over each rule's nodes and no rows, however many conditions hold.
C = AlertCondition.__table__
LATEST = NodeMetricLatest.__table__
NODES = Node.__table__
AGENTS = Agent.__table__
TAGS = NodeTag.__table__
FAILED_AGENT = ("stopped", "error")


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One rule as the evaluator runs it: its condition, the nodes it looks at, how long it
    must hold to fire and how long a firing one stays open once clear, and what its alerts
    record (`threshold` is 1 for a boolean rule: "the state is true")."""

    rule_id: int
    metric: str
    operator: str
    threshold: float
    target_type: str
    node_ids: Sequence[int] = ()  # node targets
    group_ids: Sequence[int] = ()  # group targets, sub-groups included
    tags: Sequence[str] = ()  # tag targets
    duration: int = 0
    keep_firing_for: int = 0
    severity: str = "warning"


_COMPARE = {
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
}
NodeFilter = Callable[[sa.ColumnElement[int]], list[sa.ColumnElement[bool]]]


@dataclass(frozen=True, slots=True)
class _Table:
    """A table a rule reads, joined on its node id, with what must hold of its row."""

    table: sa.FromClause
    node_id: sa.ColumnElement[int]
    where: tuple[sa.ColumnElement[bool], ...]


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a rule's condition is read for a node: its tables (the first drives a scan of the
    fleet), what must hold of the node id itself (tags, a list of nodes), and the value."""

    tables: tuple[_Table, ...]
    on_node: NodeFilter
    value: sa.ColumnElement[Any]

    @property
    def where(self) -> list[sa.ColumnElement[bool]]:
        return [w for t in self.tables for w in t.where]


def _source(check: RuleCheck, fresh_after: datetime) -> _Source:
    """The tables a rule needs and nothing more: a metric rule on every node reads the latest
    metrics alone (a row there is a node: the foreign key cascades); nodes are joined only to
    filter by group or state."""
    in_groups = (
        (NODES.c.group_id.in_(list(check.group_ids)),) if check.target_type == "group" else ()
    )
    if check.metric == "node_offline":
        nodes = _Table(NODES, NODES.c.id, (NODES.c.status == "offline", *in_groups))
        return _Source((nodes,), _node_filter(check), _one())
    if check.metric == "agent_not_running":
        agents = _Table(AGENTS, AGENTS.c.node_id, (AGENTS.c.status.in_(FAILED_AGENT),))
        nodes = _Table(NODES, NODES.c.id, (NODES.c.status == "online", *in_groups))
        return _Source((agents, nodes), _node_filter(check), _one())
    column = LATEST.c[check.metric]
    holds = _COMPARE[check.operator](column, sa.literal(check.threshold, sa.Float))
    latest = _Table(LATEST, LATEST.c.node_id, (holds, LATEST.c.timestamp >= fresh_after))
    tables = (latest, _Table(NODES, NODES.c.id, in_groups)) if in_groups else (latest,)
    return _Source(tables, _node_filter(check), column)


def _one() -> sa.ColumnElement[Any]:
    return sa.literal_column("1", sa.Integer)


def _node_filter(check: RuleCheck) -> NodeFilter:
    if check.target_type == "tag":
        keys = sorted({tag_key(t) for t in check.tags})
        tagged = sa.select(TAGS.c.node_id).where(TAGS.c.tag.in_(keys))
        return lambda node_id: [node_id.in_(tagged)]
    if check.target_type == "node":
        return lambda node_id: [node_id.in_(list(check.node_ids))]
    return lambda node_id: []


def _scan(source: _Source) -> tuple[sa.FromClause, sa.ColumnElement[int], list[Any]]:
    """The fleet as the rule sees it, driven by its first table: FROM, node id, WHERE."""
    first, *rest = source.tables
    joined: sa.FromClause = first.table
    for t in rest:
        joined = joined.join(t.table, t.node_id == first.node_id)
    return joined, first.node_id, source.where + source.on_node(first.node_id)


def _ordered(stmt: AnySelect) -> AnySelect:
    # MariaDB would rather walk every node by an index and look each one up in the other
    # tables; read the tables in the order written: the rule's own rows first.
    return stmt.prefix_with("STRAIGHT_JOIN", dialect="mysql")


def _without_condition(rule_id: int, node_id: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """The node has no condition of this rule. NOT IN, not NOT EXISTS: the rule's conditions
    are read once (PostgreSQL hashes them) rather than probed per node, which matters when the
    statement inserts into that table and the planner, whose statistics saw it empty, would
    scan it again for every row."""
    return node_id.not_in(sa.select(C.c.node_id).where(C.c.rule_id == rule_id))


def _key(rule_id: int, node_id: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    return sa.literal(f"{rule_id}:", sa.String) + sa.cast(node_id, sa.String)


def _statements(
    parts: Sequence[AnySelect],
) -> Iterator[AnySelect | sa.CompoundSelect[*tuple[Any, ...]]]:
    """The parts in UNION ALLs of at most RULES_PER_QUERY terms."""
    for chunk in chunks(parts, RULES_PER_QUERY):
        yield chunk[0] if len(chunk) == 1 else sa.union_all(*chunk)


async def start_pending(
    session: AsyncSession, checks: Sequence[RuleCheck], now: datetime, fresh_after: datetime
) -> int:
    """A pending condition, since `now`, for every (rule, node) that holds and has none (a
    rule without a duration fires it in the same evaluation). Returns how many started on
    rules with a duration: those stay pending."""
    started = 0
    for waits in (True, False):
        parts = [
            _new_conditions(check, now, fresh_after)
            for check in checks
            if (check.duration > 0) == waits
        ]
        for select in _statements(parts):
            insert = sa.insert(AlertCondition).from_select(
                ["key", "rule_id", "node_id", "since"], select
            )
            count = (await session.execute(insert)).rowcount  # type: ignore[attr-defined]
            started += count if waits else 0
    return started


def _new_conditions(check: RuleCheck, now: datetime, fresh_after: datetime) -> AnySelect:
    joined, node_id, where = _scan(_source(check, fresh_after))
    return _ordered(
        sa.select(
            _key(check.rule_id, node_id),
            sa.literal(check.rule_id, sa.BigInteger),
            node_id,
            sa.literal(now, sa.DateTime),
        )
        .select_from(joined)
        .where(*where, _without_condition(check.rule_id, node_id))
    )


@dataclass(frozen=True, slots=True)
class Fired:
    """An alert an evaluation opened."""

    alert_id: int
    rule_id: int
    node_id: int
    value: float


ALERT_COLUMNS = (
    "rule_id",
    "node_id",
    "metric",
    "current_value",
    "threshold",
    "severity",
    "status",
    "fired_at",
    "created_at",
    "open_key",
)


async def fire(
    session: AsyncSession, checks: Sequence[RuleCheck], now: datetime, fresh_after: datetime
) -> list[Fired]:
    """Open an alert for every condition due to fire: pending for its rule's duration (at
    once for a rule without one) and still holding. The alerts are written by the database
    from what holds (INSERT ... SELECT) and read back by id; then their conditions are
    marked firing."""
    parts = [_due(check, now, fresh_after) for check in checks]
    if not parts:
        return []
    # Alerts are only written under the evaluator's lock: the ids past this one are ours.
    last_id = int(await session.scalar(sa.select(sa.func.max(Alert.id))) or 0)
    opened = 0
    for select in _statements(parts):
        insert = sa.insert(Alert).from_select(list(ALERT_COLUMNS), select)
        opened += (await session.execute(insert)).rowcount  # type: ignore[attr-defined]
    if not opened:
        return []
    ours = Alert.id > last_id
    await session.execute(
        sa.update(AlertCondition)
        .where(AlertCondition.key == Alert.open_key, AlertCondition.fired_at.is_(None), ours)
        .values(fired_at=now),
        execution_options=BULK,
    )
    rows = await session.execute(
        sa.select(Alert.id, Alert.rule_id, Alert.node_id, Alert.current_value)
        .where(Alert.id > last_id)
        .order_by(Alert.id)
    )
    return [Fired(int(i), int(r), int(n), float(v)) for i, r, n, v in rows]


def _due(check: RuleCheck, now: datetime, fresh_after: datetime) -> AnySelect:
    """The alert rows of a rule's conditions due to fire now: driven by its pending ones."""
    source = _source(check, fresh_after)
    joined: sa.FromClause = C
    for t in source.tables:
        joined = joined.join(t.table, t.node_id == C.c.node_id)
    return _ordered(
        sa.select(
            sa.literal(check.rule_id, sa.BigInteger),
            C.c.node_id,
            sa.literal(check.metric, sa.String),
            source.value,
            sa.literal(check.threshold, Threshold),
            sa.literal(check.severity, sa.String),
            sa.literal("firing", sa.String),
            sa.literal(now, sa.DateTime),
            sa.literal(now, sa.DateTime),
            C.c.key,
        )
        .select_from(joined)
        .where(
            C.c.rule_id == check.rule_id,
            C.c.fired_at.is_(None),
            C.c.since <= now - timedelta(seconds=check.duration),
            *source.where,
            *source.on_node(C.c.node_id),
        )
    )


@dataclass(frozen=True, slots=True)
class Change:
    """A condition whose state may move: it stopped holding, holds again while clearing, or
    its rule is no longer enabled (then `holds` is False). `alert_id`: its open alert."""

    key: str
    rule_id: int
    node_id: int
    fired_at: datetime | None
    cleared_at: datetime | None
    alert_id: int | None
    holds: bool


async def changes(
    session: AsyncSession, checks: Sequence[RuleCheck], now: datetime, fresh_after: datetime
) -> list[Change]:
    """The conditions whose state moves now, and those of rules no longer enabled; a
    condition that holds and is not clearing, or is clearing and not due to resolve, is
    left in the database."""
    parts = [_changing(check, now, fresh_after) for check in checks]
    enabled = [check.rule_id for check in checks]
    orphaned = C.c.rule_id.not_in(enabled) if enabled else sa.true()
    parts.append(_change_row(sa.false()).where(orphaned))
    found = []
    for select in _statements(parts):
        for key, rule_id, node_id, fired_at, cleared_at, alert_id, holds in await session.execute(
            select
        ):
            found.append(
                Change(
                    str(key),
                    int(rule_id),
                    int(node_id),
                    fired_at,
                    cleared_at,
                    None if alert_id is None else int(alert_id),
                    bool(holds),
                )
            )
    return found


def _change_row(holds: sa.ColumnElement[bool]) -> AnySelect:
    open_alert = sa.select(Alert.id).where(Alert.open_key == C.c.key).scalar_subquery()
    flag = sa.case((holds, 1), else_=0)
    return sa.select(
        C.c.key, C.c.rule_id, C.c.node_id, C.c.fired_at, C.c.cleared_at, open_alert, flag
    )


def _changing(check: RuleCheck, now: datetime, fresh_after: datetime) -> AnySelect:
    source = _source(check, fresh_after)
    joined: sa.FromClause = C
    for t in source.tables:
        joined = joined.outerjoin(t.table, sa.and_(t.node_id == C.c.node_id, *t.where))
    holds = sa.and_(*(t.node_id.is_not(None) for t in source.tables), *source.on_node(C.c.node_id))
    due_to_end = sa.or_(
        C.c.fired_at.is_(None),  # pending
        C.c.cleared_at.is_(None),  # firing, clear from now (or resolved: no keep_firing_for)
        C.c.cleared_at <= now - timedelta(seconds=check.keep_firing_for),
    )
    return (
        _change_row(holds)
        .select_from(joined)
        .where(
            C.c.rule_id == check.rule_id,
            sa.or_(sa.and_(~holds, due_to_end), sa.and_(holds, C.c.cleared_at.is_not(None))),
        )
    )


async def holding(session: AsyncSession) -> int:
    """How many conditions hold, once an evaluation is written: every condition but those
    clearing (firing, kept open for keep_firing_for)."""
    stmt = sa.select(sa.func.count()).select_from(C).where(C.c.cleared_at.is_(None))
    return int(await session.scalar(stmt) or 0)


async def delete_conditions(
    session: AsyncSession, keys: Sequence[str], *where: sa.ColumnElement[bool]
) -> None:
    for part in chunks(keys, KEYS_PER_STATEMENT):
        await session.execute(
            sa.delete(AlertCondition).where(AlertCondition.key.in_(part), *where),
            execution_options=BULK,
        )


async def update_conditions(
    session: AsyncSession, keys: Sequence[str], values: Mapping[str, Any]
) -> None:
    for part in chunks(keys, KEYS_PER_STATEMENT):
        await session.execute(
            sa.update(AlertCondition).where(AlertCondition.key.in_(part)).values(**values),
            execution_options=BULK,
        )


async def resolve_alerts(session: AsyncSession, alert_ids: Sequence[int], now: datetime) -> None:
    """Resolve these open alerts (by id: the primary key, whatever else the planner thinks)."""
    for part in chunks(alert_ids, KEYS_PER_STATEMENT):
        await session.execute(
            sa.update(Alert)
            .where(Alert.id.in_(part), Alert.status == "firing")
            .values(status="resolved", resolved_at=now, open_key=None),
            execution_options=BULK,
        )


# -- alerts -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AlertInContext:
    """An alert with its rule's name and its node's hostname, group and tags (what silences
    match on); the rule or the node may be gone."""

    alert: Alert
    rule_name: str | None
    hostname: str | None
    group_id: int | None
    tags: list[str]


async def rules_by_id(session: AsyncSession, rule_ids: Sequence[int]) -> dict[int, AlertRule]:
    """These rules (those that still exist), by id."""
    found: dict[int, AlertRule] = {}
    for part in chunks(sorted(set(rule_ids))):
        found |= {
            r.id: r
            for r in await session.scalars(sa.select(AlertRule).where(AlertRule.id.in_(part)))
        }
    return found


@dataclass(frozen=True, slots=True)
class NoticeRow:
    """What a notification says of an alert, and its node's name (None: the node is gone)."""

    alert_id: int
    node_id: int
    metric: str
    threshold: float
    current_value: float
    severity: str
    fired_at: datetime
    resolved_at: datetime | None
    hostname: str | None


async def notice_rows(session: AsyncSession, alert_ids: Sequence[int]) -> list[NoticeRow]:
    """The alerts to notify of, as plain rows (a fleet-wide outage is tens of thousands)."""
    found: list[NoticeRow] = []
    for part in chunks(alert_ids, KEYS_PER_STATEMENT):
        stmt = (
            sa.select(
                Alert.id,
                Alert.node_id,
                Alert.metric,
                Alert.threshold,
                Alert.current_value,
                Alert.severity,
                Alert.fired_at,
                Alert.resolved_at,
                Node.hostname,
            )
            .outerjoin(Node, Node.id == Alert.node_id)
            .where(Alert.id.in_(part))
        )
        found += [
            NoticeRow(int(i), int(n), m, float(t), float(v), sev, f, r, h)
            for i, n, m, t, v, sev, f, r, h in await session.execute(stmt)
        ]
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
