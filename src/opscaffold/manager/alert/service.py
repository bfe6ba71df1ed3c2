"""Rules for alert rules, alerts and silences.

A rule watches a NodeMetrics field (compared with an operator and a threshold) or a node's
state (`node_offline`, `agent_not_running`: they hold or not, with no operator or threshold)
on the nodes of its target. The evaluator (evaluator.py) turns rules into alerts; here alerts
are only read and acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.alert import repository
from opscaffold.manager.alert.evaluator import Transition, load_silencer
from opscaffold.manager.alert.repository import AlertFilter, AlertInContext
from opscaffold.manager.alert.schemas import (
    BOOLEAN_METRICS,
    AlertRead,
    AlertRuleCreate,
    AlertRuleRead,
    AlertRuleUpdate,
    AlertSilenceCreate,
    AlertSilenceRead,
    AlertSilenceUpdate,
)
from opscaffold.manager.alert.silences import Silencer, Subject
from opscaffold.manager.errors import (
    AlertNotFound,
    AlertRuleNotFound,
    AlertSilenceNotFound,
    GroupNotFound,
    InvalidArgument,
    NodeNotFound,
)
from opscaffold.manager.kit.clock import as_utc
from opscaffold.manager.models import AlertRule, AlertSilence
from opscaffold.manager.node import repository as node_repository
from opscaffold.manager.node.tree import GroupTree
from opscaffold.manager.notification import service as notification_service

# What a boolean rule stores in the spec's NOT NULL columns: "the state is true".
BOOLEAN_OPERATOR, BOOLEAN_THRESHOLD = "eq", 1.0


# -- rules ------------------------------------------------------------------------------------
def present_rule(rule: AlertRule) -> AlertRuleRead:
    boolean = rule.metric in BOOLEAN_METRICS
    channels = (rule.notification or {}).get("channels", [])
    return AlertRuleRead(
        id=rule.id,
        name=rule.name,
        metric=rule.metric,
        operator=None if boolean else rule.operator,
        threshold=None if boolean else float(rule.threshold),
        duration=rule.duration,
        keep_firing_for=rule.keep_firing_for,
        severity=rule.severity,
        target_type=rule.target_type,
        target_value=[str(v) for v in rule.target_value or []],
        notification_channels=list(channels),
        enabled=rule.status == "enabled",
        created_by=rule.created_by,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


async def get_rule(session: AsyncSession, rule_id: int, *, for_update: bool = False) -> AlertRule:
    rule = await repository.get_rule(session, rule_id, for_update=for_update)
    if rule is None:
        raise AlertRuleNotFound()
    return rule


async def list_rules(
    session: AsyncSession, *, offset: int, limit: int
) -> tuple[int, list[AlertRuleRead]]:
    total, rules = await repository.page_rules(session, offset=offset, limit=limit)
    return total, [present_rule(r) for r in rules]


async def create_rule(session: AsyncSession, data: AlertRuleCreate, user_id: int) -> AlertRule:
    values = await _checked(session, data.model_dump(), given=data.model_fields_set)
    rule = AlertRule(created_by=user_id, **values)
    session.add(rule)
    await session.flush()
    await session.refresh(rule)
    return rule


async def update_rule(session: AsyncSession, rule_id: int, data: AlertRuleUpdate) -> AlertRule:
    """Apply the given fields; the rule as changed must be whole (a NodeMetrics rule has an
    operator and a threshold, a boolean one has neither)."""
    rule = await get_rule(session, rule_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if nulls := sorted(k for k, v in changes.items() if v is None):
        raise InvalidArgument(f"{nulls[0]}: must not be null")
    current = {
        "name": rule.name,
        "metric": rule.metric,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "duration": rule.duration,
        "keep_firing_for": rule.keep_firing_for,
        "severity": rule.severity,
        "target_type": rule.target_type,
        "target_value": list(rule.target_value or []),
        "notification_channels": list((rule.notification or {}).get("channels", [])),
        "enabled": rule.status == "enabled",
    }
    if rule.metric in BOOLEAN_METRICS:  # nothing to keep: a new metric needs its own
        current["operator"] = current["threshold"] = None
    merged = current | changes
    if "target_type" in changes and "target_value" not in changes:
        merged["target_value"] = []
    values = await _checked(session, merged, given=set(changes))
    for name, value in values.items():
        setattr(rule, name, value)
    await session.flush()
    await session.refresh(rule)
    return rule


async def delete_rule(session: AsyncSession, rule_id: int) -> AlertRule:
    """Delete the rule; its firing alerts are resolved by the next evaluation."""
    rule = await get_rule(session, rule_id, for_update=True)
    await session.delete(rule)
    return rule


async def _checked(
    session: AsyncSession, values: dict[str, Any], *, given: set[str]
) -> dict[str, Any]:
    """The column values of a rule, once it is whole and its target exists."""
    metric = values["metric"]
    if metric in BOOLEAN_METRICS:
        for name in ("operator", "threshold"):
            if name in given and values[name] is not None:
                raise InvalidArgument(f"{name}: a {metric} rule takes no {name}")
        operator, threshold = BOOLEAN_OPERATOR, BOOLEAN_THRESHOLD
    else:
        for name in ("operator", "threshold"):
            if values[name] is None:
                raise InvalidArgument(f"{name}: required for a rule on {metric}")
        operator, threshold = values["operator"], values["threshold"]
    targets = await _target_values(session, values["target_type"], values["target_value"])
    return {
        "name": values["name"],
        "metric": metric,
        "operator": operator,
        "threshold": threshold,
        "duration": values["duration"],
        "keep_firing_for": values["keep_firing_for"],
        "severity": values["severity"],
        "target_type": values["target_type"],
        "target_value": targets,
        "notification": {
            "channels": await notification_service.resolve_channels(
                session, values["notification_channels"]
            )
        },
        "status": "enabled" if values["enabled"] else "disabled",
    }


async def _target_values(
    session: AsyncSession, target_type: str, raw: Sequence[str]
) -> list[str] | None:
    values = list(dict.fromkeys(v.strip() for v in raw if v.strip()))
    if target_type == "all":
        if values:
            raise InvalidArgument("target_value: an 'all' target takes no values")
        return None
    if not values:
        raise InvalidArgument(f"target_value: a {target_type} target needs at least one value")
    if target_type == "tag":
        return values
    ids = _ids(values)
    if target_type == "group":
        await ensure_groups(session, ids)
    else:
        await ensure_nodes(session, ids)
    return [str(i) for i in ids]


def _ids(values: Sequence[str], field: str = "target_value") -> list[int]:
    if not all(v.isdigit() and 1 <= int(v) < 2**63 for v in values):
        raise InvalidArgument(f"{field}: ids must be positive integers")
    return [int(v) for v in values]


async def ensure_groups(
    session: AsyncSession, ids: Sequence[int], field: str = "target_value"
) -> None:
    tree = GroupTree(await node_repository.group_edges(session))
    if missing := [g for g in ids if g not in tree]:
        raise GroupNotFound(f"{field}: no such group: {', '.join(map(str, missing[:10]))}")


async def ensure_nodes(
    session: AsyncSession, ids: Sequence[int], field: str = "target_value"
) -> None:
    found: set[int] = set()
    for part in repository.chunks(list(ids)):
        found |= set(await node_repository.ids_where(session, [node_repository.is_one_of(part)]))
    if missing := sorted(set(ids) - found):
        raise NodeNotFound(f"{field}: no such node: {', '.join(map(str, missing[:10]))}")


# -- alerts -----------------------------------------------------------------------------------
def _present(found: AlertInContext, silencer: Silencer) -> AlertRead:
    alert = found.alert
    covering = silencer.covering(Subject(alert.rule_id, alert.node_id, found.group_id, found.tags))
    return AlertRead(
        id=alert.id,
        rule_id=alert.rule_id,
        rule_name=found.rule_name,
        node_id=alert.node_id,
        hostname=found.hostname,
        metric=alert.metric,
        current_value=float(alert.current_value),
        threshold=float(alert.threshold),
        severity=alert.severity,
        status=alert.status,
        fired_at=alert.fired_at,
        resolved_at=alert.resolved_at,
        acknowledged_by=alert.acknowledged_by,
        acknowledged_at=alert.acknowledged_at,
        silenced=bool(covering),
        silence_ids=covering,
    )


async def list_alerts(
    session: AsyncSession, filters: AlertFilter, now: datetime, *, offset: int, limit: int
) -> tuple[int, list[AlertRead]]:
    """A page of alerts, newest first; `silenced` says whether a silence covers each now."""
    if filters.since and filters.until and filters.since >= filters.until:
        raise InvalidArgument("until: must be after since")
    total, rows = await repository.page_alerts(session, filters, offset=offset, limit=limit)
    if not rows:
        return total, []
    silencer = await load_silencer(session, now)
    return total, [_present(row, silencer) for row in rows]


async def get_alert(session: AsyncSession, alert_id: int, now: datetime) -> AlertRead:
    row = await repository.get_alert(session, alert_id)
    if row is None:
        raise AlertNotFound()
    return _present(row, await load_silencer(session, now))


async def acknowledge(
    session: AsyncSession, alert_id: int, user_id: int, now: datetime
) -> tuple[AlertRead, bool]:
    """Acknowledge the alert (firing or resolved); an alert acknowledged already keeps its
    first acknowledgement. Returns the alert and whether this call acknowledged it."""
    if not await repository.alert_exists(session, alert_id):
        raise AlertNotFound()
    done = await repository.acknowledge(session, alert_id, user_id, now)
    return await get_alert(session, alert_id, now), done


# -- silences ---------------------------------------------------------------------------------
def present_silence(silence: AlertSilence, now: datetime) -> AlertSilenceRead:
    read = AlertSilenceRead.model_validate(silence)
    read.active = silence.starts_at <= now < silence.ends_at
    return read


async def get_silence(
    session: AsyncSession, silence_id: int, *, for_update: bool = False
) -> AlertSilence:
    silence = await repository.get_silence(session, silence_id, for_update=for_update)
    if silence is None:
        raise AlertSilenceNotFound()
    return silence


async def list_silences(
    session: AsyncSession, now: datetime, *, active: bool, offset: int, limit: int
) -> tuple[int, list[AlertSilenceRead]]:
    total, silences = await repository.page_silences(
        session, now, active=active, offset=offset, limit=limit
    )
    return total, [present_silence(s, now) for s in silences]


async def create_silence(
    session: AsyncSession, data: AlertSilenceCreate, user_id: int, now: datetime
) -> AlertSilence:
    value = await _silence_target(session, data.target_type, data.target_value)
    starts_at = _naive(data.starts_at) if data.starts_at is not None else now
    ends_at = _naive(data.ends_at)
    _check_window(starts_at, ends_at, now)
    silence = AlertSilence(
        target_type=data.target_type,
        target_value=value,
        reason=data.reason,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(silence)
    await session.flush()
    return silence


async def update_silence(
    session: AsyncSession, silence_id: int, data: AlertSilenceUpdate, now: datetime
) -> AlertSilence:
    """Change the reason or the window (ending a silence early: an `ends_at` of now)."""
    silence = await get_silence(session, silence_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if nulls := sorted(k for k, v in changes.items() if v is None):
        raise InvalidArgument(f"{nulls[0]}: must not be null")
    starts_at = _naive(data.starts_at) if data.starts_at is not None else silence.starts_at
    ends_at = _naive(data.ends_at) if data.ends_at is not None else silence.ends_at
    if ends_at < starts_at:  # equal: ended as soon as it began
        raise InvalidArgument("ends_at: must not be before starts_at")
    if data.ends_at is not None and ends_at < now - CLOCK_SKEW:
        raise InvalidArgument("ends_at: must not be in the past")
    silence.starts_at, silence.ends_at = starts_at, ends_at
    if data.reason is not None:
        silence.reason = data.reason
    silence.updated_at = now
    await session.flush()
    return silence


async def delete_silence(session: AsyncSession, silence_id: int) -> AlertSilence:
    silence = await get_silence(session, silence_id, for_update=True)
    await session.delete(silence)
    return silence


async def _silence_target(session: AsyncSession, target_type: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument("target_value: must not be blank")
    if target_type == "tag":
        return value
    (target_id,) = _ids([value])
    if target_type == "rule":
        await get_rule(session, target_id)
    elif target_type == "group":
        await ensure_groups(session, [target_id])
    else:
        await ensure_nodes(session, [target_id])
    return str(target_id)


# "Now" from a client (to end a silence) arrives a little late, and its clock may be a little
# off, and times are kept to the second: that much in the past still means now.
CLOCK_SKEW = timedelta(seconds=60)


def _check_window(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidArgument("ends_at: must be after starts_at")
    if ends_at <= now:
        raise InvalidArgument("ends_at: must be in the future")


def _naive(value: datetime) -> datetime:
    return as_utc(value).replace(microsecond=0)


async def notices(
    session: AsyncSession, transitions: Sequence[Transition]
) -> list[notification_service.AlertNotice]:
    """What to notify of the transitions: one notice per alert no silence covers and whose
    rule names channels (a deleted rule's channels are gone with it). Only those alerts are
    read: a rule without channels costs nothing however many of its alerts moved."""
    loud = [t for t in transitions if not t.silenced]
    rules = await repository.rules_by_id(session, [t.rule_id for t in loud])
    channels = {rule_id: _channels(rule) for rule_id, rule in rules.items()}
    wanted = {t.alert_id: t for t in loud if channels.get(t.rule_id)}
    found: list[notification_service.AlertNotice] = []
    for row in await repository.notice_rows(session, list(wanted)):
        transition = wanted[row.alert_id]
        rule = rules[transition.rule_id]
        found.append(
            notification_service.AlertNotice(
                alert_id=row.alert_id,
                rule_id=rule.id,
                rule_name=rule.name,
                node_id=row.node_id,
                node_name=row.hostname or f"node {row.node_id}",
                metric=row.metric,
                operator=rule.operator,
                threshold=row.threshold,
                current_value=(
                    transition.value if transition.value is not None else row.current_value
                ),
                severity=row.severity,
                status=transition.to,
                fired_at=row.fired_at,
                resolved_at=row.resolved_at,
                event=transition.to,
                channel_ids=channels[rule.id],
            )
        )
    return found


def _channels(rule: AlertRule) -> list[int]:
    return [int(c) for c in (rule.notification or {}).get("channels", [])]
