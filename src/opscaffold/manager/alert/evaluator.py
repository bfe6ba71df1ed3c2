"""Evaluating every enabled rule against every node it targets, in batch.

One evaluation is a fixed handful of set-based statements, whatever the size of the fleet:
lock the evaluator's row, load the enabled rules (and the group tree if a rule targets a
group), find every (rule, node) whose condition holds now (one statement per hundred rules,
over the latest metrics, node states and agents), load the conditions already pending or
firing, then write the differences in bulk. Each (rule, node) moves only as `states.py`
allows; the moves are collected into one list of transitions, the single place from which
notifications are to be queued, in the evaluation's own transaction.

Two replicas never evaluate at once: the first statement locks the evaluator's row, and one
that comes second with an older clock gives way. On top of that, an alert's open_key is
unique, so a condition can never have two open alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.alert import repository
from opscaffold.manager.alert.repository import Condition, RuleCheck
from opscaffold.manager.alert.schemas import BOOLEAN_METRICS
from opscaffold.manager.alert.silences import Silencer, Subject
from opscaffold.manager.alert.states import AlertState, check
from opscaffold.manager.models import AlertRule
from opscaffold.manager.node import repository as node_repository
from opscaffold.manager.node.tree import GroupTree


@dataclass(frozen=True, slots=True)
class Transition:
    """A condition that fired or resolved: what a notification would say."""

    to: Literal["firing", "resolved"]
    alert_id: int
    rule_id: int
    node_id: int
    metric: str
    severity: str
    value: float | None  # firing: the value that fired it
    threshold: float
    at: datetime
    reason: str  # why it resolved ("cleared", "rule disabled", …); "" when firing
    silenced_by: tuple[int, ...] = ()  # active silences covering it: notify nobody

    @property
    def silenced(self) -> bool:
        return bool(self.silenced_by)


@dataclass(slots=True)
class Evaluation:
    """What one evaluation did: counts for logs and metrics, and the transitions."""

    evaluated: bool = True  # False: a later evaluation had already been made
    rules: int = 0
    holding: int = 0
    pending: int = 0
    transitions: list[Transition] = field(default_factory=list)


def key_of(rule_id: int, node_id: int) -> str:
    return f"{rule_id}:{node_id}"


def state_of(condition: Condition | None) -> AlertState:
    if condition is None:
        return "inactive"
    return "pending" if condition.fired_at is None else "firing"


async def evaluate(session: AsyncSession, now: datetime, stale_after: timedelta) -> Evaluation:
    """Evaluate every enabled rule at `now` (the caller's clock, so tests drive time)."""
    if not await repository.take_evaluator(session, now):
        return Evaluation(evaluated=False)
    rules = {rule.id: rule for rule in await repository.enabled_rules(session)}
    tree = None
    if any(rule.target_type == "group" for rule in rules.values()):
        tree = GroupTree(await node_repository.group_edges(session))
    checks = [_check(rule, tree) for rule in rules.values()]
    holds = await repository.holding(session, checks, now - stale_after) if checks else {}
    existing = {c.key: c for c in await repository.conditions(session)}
    plan = _Plan(now)

    for key, condition in existing.items():
        rule = rules.get(condition.rule_id)
        value = holds.get((condition.rule_id, condition.node_id))
        state = state_of(condition)
        if rule is None:  # disabled or deleted: its conditions end at once
            plan.end(condition, state, "rule disabled or deleted")
        elif value is not None:
            if state == "pending" and now - condition.since >= timedelta(seconds=rule.duration):
                plan.fire(rule, condition.node_id, value, new=False)
            elif state == "firing" and condition.cleared_at is not None:
                plan.still_firing(key)
        elif state == "pending":
            plan.end(condition, state, "cleared")
        elif condition.cleared_at is None and rule.keep_firing_for > 0:
            plan.clearing(key)
        elif condition.cleared_at is None or (
            now - condition.cleared_at >= timedelta(seconds=rule.keep_firing_for)
        ):
            plan.end(condition, state, "cleared")

    for (rule_id, node_id), value in holds.items():
        if key_of(rule_id, node_id) in existing:
            continue
        rule = rules[rule_id]
        if rule.duration == 0:
            plan.fire(rule, node_id, value, new=True)
        else:
            plan.pend(rule_id, node_id)

    transitions = await plan.write(session, rules)
    return Evaluation(
        rules=len(rules),
        holding=len(holds),
        pending=len(plan.new_pending),
        transitions=await _mark_silenced(session, transitions, now),
    )


def _check(rule: AlertRule, tree: GroupTree | None) -> RuleCheck:
    values = [str(v) for v in rule.target_value or []]
    node_ids: list[int] = []
    group_ids: list[int] = []
    if rule.target_type == "node":
        node_ids = [int(v) for v in values if v.isdigit()]
    elif rule.target_type == "group" and tree is not None:
        group_ids = sorted({g for v in values if v.isdigit() for g in tree.subtree(int(v))})
    return RuleCheck(
        rule_id=rule.id,
        metric=rule.metric,
        operator=rule.operator,
        threshold=float(rule.threshold),
        target_type=rule.target_type,
        node_ids=node_ids,
        group_ids=group_ids,
        tags=values if rule.target_type == "tag" else (),
    )


@dataclass(frozen=True, slots=True)
class _Firing:
    rule: AlertRule
    node_id: int
    value: float
    new: bool  # no condition row yet (duration 0)


@dataclass(frozen=True, slots=True)
class _Ending:
    condition: Condition
    firing: bool
    reason: str


class _Plan:
    """The moves of one evaluation, checked against the state table, then written in bulk."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.new_pending: list[tuple[int, int]] = []
        self.firing: list[_Firing] = []
        self.ending: list[_Ending] = []
        self.cleared: list[str] = []  # firing, now false: keep_firing_for starts
        self.held_again: list[str] = []  # firing, cleared, true again

    def pend(self, rule_id: int, node_id: int) -> None:
        check("inactive", "pending")
        self.new_pending.append((rule_id, node_id))

    def fire(self, rule: AlertRule, node_id: int, value: float, *, new: bool) -> None:
        check("inactive" if new else "pending", "firing")
        self.firing.append(_Firing(rule, node_id, value, new))

    def end(self, condition: Condition, state: AlertState, reason: str) -> None:
        check(state, "resolved" if state == "firing" else "inactive")
        self.ending.append(_Ending(condition, state == "firing", reason))

    def clearing(self, key: str) -> None:
        check("firing", "firing")
        self.cleared.append(key)

    def still_firing(self, key: str) -> None:
        check("firing", "firing")
        self.held_again.append(key)

    async def write(self, session: AsyncSession, rules: dict[int, AlertRule]) -> list[Transition]:
        """Write every move in bulk; returns the firings and resolutions, with alert ids."""
        now = self.now
        await repository.add_conditions(
            session,
            [
                {"key": key_of(r, n), "rule_id": r, "node_id": n, "since": now, "fired_at": None}
                for r, n in self.new_pending
            ]
            + [
                {
                    "key": key_of(f.rule.id, f.node_id),
                    "rule_id": f.rule.id,
                    "node_id": f.node_id,
                    "since": now,
                    "fired_at": now,
                }
                for f in self.firing
                if f.new
            ],
        )
        promoted = [key_of(f.rule.id, f.node_id) for f in self.firing if not f.new]
        await repository.update_conditions(session, promoted, {"fired_at": now})
        await repository.update_conditions(session, self.cleared, {"cleared_at": now})
        await repository.update_conditions(session, self.held_again, {"cleared_at": None})
        fired_ids = await repository.add_alerts(session, [self._alert_row(f) for f in self.firing])

        ended = [e.condition.key for e in self.ending]
        resolved_ids = await repository.resolve_alerts(
            session, [e.condition.key for e in self.ending if e.firing], now
        )
        await repository.delete_conditions(session, ended)

        transitions = [
            Transition(
                to="firing",
                alert_id=fired_ids[key_of(f.rule.id, f.node_id)],
                rule_id=f.rule.id,
                node_id=f.node_id,
                metric=f.rule.metric,
                severity=f.rule.severity,
                value=f.value,
                threshold=_threshold(f.rule),
                at=now,
                reason="",
            )
            for f in self.firing
        ]
        for e in self.ending:
            alert_id = resolved_ids.get(e.condition.key)
            if alert_id is None:
                continue
            rule = rules.get(e.condition.rule_id)
            transitions.append(
                Transition(
                    to="resolved",
                    alert_id=alert_id,
                    rule_id=e.condition.rule_id,
                    node_id=e.condition.node_id,
                    metric=rule.metric if rule else "",
                    severity=rule.severity if rule else "",
                    value=None,
                    threshold=_threshold(rule) if rule else 0.0,
                    at=now,
                    reason=e.reason,
                )
            )
        return transitions

    def _alert_row(self, f: _Firing) -> dict[str, object]:
        return {
            "rule_id": f.rule.id,
            "node_id": f.node_id,
            "metric": f.rule.metric,
            "current_value": f.value,
            "threshold": _threshold(f.rule),
            "severity": f.rule.severity,
            "status": "firing",
            "fired_at": self.now,
            "created_at": self.now,
            "open_key": key_of(f.rule.id, f.node_id),
        }


def _threshold(rule: AlertRule) -> float:
    # A boolean rule holds when its state is true: 1.
    return 1.0 if rule.metric in BOOLEAN_METRICS else float(rule.threshold)


async def _mark_silenced(
    session: AsyncSession, transitions: Sequence[Transition], now: datetime
) -> list[Transition]:
    if not transitions:
        return []
    silencer = await load_silencer(session, now)
    if not silencer:
        return list(transitions)
    places = await repository.node_places(session, [t.node_id for t in transitions])
    marked = []
    for t in transitions:
        group_id, tags = places.get(t.node_id, (None, []))
        covering = silencer.covering(Subject(t.rule_id, t.node_id, group_id, tags))
        marked.append(replace(t, silenced_by=tuple(covering)))
    return marked


async def load_silencer(session: AsyncSession, now: datetime) -> Silencer:
    """The silences active at `now`, with the group tree when one of them names a group."""
    silences = await repository.active_silences(session, now)
    silencer = Silencer(silences, None)
    if silencer.needs_tree:
        silencer = Silencer(silences, GroupTree(await node_repository.group_edges(session)))
    return silencer
