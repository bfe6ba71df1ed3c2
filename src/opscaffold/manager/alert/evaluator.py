"""Evaluating every enabled rule against every node it targets, in the database.

One evaluation is a fixed handful of set-based statements, whatever the size of the fleet,
and brings back only the conditions whose state changes: lock the evaluator's row, load the
enabled rules (and the group tree if a rule targets a group), then

- start a pending condition for each (rule, node) that holds and has none (INSERT ... SELECT);
- open an alert for each condition due to fire (INSERT ... SELECT: pending for the rule's
  duration, at once for a rule without one, and still holding), read those alerts back by id
  and mark their conditions firing;
- read the conditions that moved otherwise: stopped holding (a pending one ends, a firing one
  starts clearing or resolves), held again while clearing, or lost their rule;
- write those moves by key or alert id, and count what holds.

Each (rule, node) moves only as `states.py` allows; the moves are collected into one list of
transitions, the single place from which notifications are to be queued, in the evaluation's
own transaction.

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
from opscaffold.manager.alert.repository import Change, RuleCheck
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
    holding: int = 0  # conditions that hold, once written
    pending: int = 0  # conditions that started pending
    transitions: list[Transition] = field(default_factory=list)


def state_of(fired_at: datetime | None) -> AlertState:
    return "pending" if fired_at is None else "firing"


async def evaluate(session: AsyncSession, now: datetime, stale_after: timedelta) -> Evaluation:
    """Evaluate every enabled rule at `now` (the caller's clock, so tests drive time)."""
    if not await repository.take_evaluator(session, now):
        return Evaluation(evaluated=False)
    rules = {rule.id: rule for rule in await repository.enabled_rules(session)}
    tree = None
    if any(rule.target_type == "group" for rule in rules.values()):
        tree = GroupTree(await node_repository.group_edges(session))
    checks = [_check(rule, tree) for rule in rules.values()]
    fresh_after = now - stale_after

    check("inactive", "pending")
    pending = await repository.start_pending(session, checks, now, fresh_after)
    check("pending", "firing")
    check("inactive", "firing")
    fired = await repository.fire(session, checks, now, fresh_after)
    moves = _Moves(now, rules)
    for change in await repository.changes(session, checks, now, fresh_after):
        moves.add(change)
    transitions = [_fired(f, rules[f.rule_id], now) for f in fired]
    transitions += await moves.write(session)
    return Evaluation(
        rules=len(rules),
        holding=await repository.holding(session),
        pending=pending,
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
        threshold=_threshold(rule),
        target_type=rule.target_type,
        node_ids=node_ids,
        group_ids=group_ids,
        tags=values if rule.target_type == "tag" else (),
        duration=rule.duration,
        keep_firing_for=rule.keep_firing_for,
        severity=rule.severity,
    )


def _fired(fired: repository.Fired, rule: AlertRule, now: datetime) -> Transition:
    return Transition(
        to="firing",
        alert_id=fired.alert_id,
        rule_id=fired.rule_id,
        node_id=fired.node_id,
        metric=rule.metric,
        severity=rule.severity,
        value=fired.value,
        threshold=_threshold(rule),
        at=now,
        reason="",
    )


@dataclass(frozen=True, slots=True)
class _Ending:
    change: Change
    reason: str


class _Moves:
    """The moves of the conditions that changed other than by firing, checked against the
    state table, then written in bulk."""

    def __init__(self, now: datetime, rules: dict[int, AlertRule]) -> None:
        self.now = now
        self.rules = rules
        self.ending: list[_Ending] = []
        self.cleared: list[str] = []  # firing, now false: keep_firing_for starts
        self.held_again: list[str] = []  # firing, cleared, true again

    def add(self, change: Change) -> None:
        rule = self.rules.get(change.rule_id)
        state = state_of(change.fired_at)
        if rule is None:  # disabled or deleted: its conditions end at once
            self._end(change, state, "rule disabled or deleted")
        elif change.holds:
            if state == "firing" and change.cleared_at is not None:
                check("firing", "firing")
                self.held_again.append(change.key)
        elif state == "pending":
            self._end(change, state, "cleared")
        elif change.cleared_at is None and rule.keep_firing_for > 0:
            check("firing", "firing")
            self.cleared.append(change.key)
        else:  # clear, and for keep_firing_for if the rule has one
            self._end(change, state, "cleared")

    def _end(self, change: Change, state: AlertState, reason: str) -> None:
        check(state, "resolved" if state == "firing" else "inactive")
        self.ending.append(_Ending(change, reason))

    async def write(self, session: AsyncSession) -> list[Transition]:
        """Write every move in bulk; returns the resolutions."""
        now = self.now
        await repository.update_conditions(session, self.cleared, {"cleared_at": now})
        await repository.update_conditions(session, self.held_again, {"cleared_at": None})
        resolved = [(e, e.change.alert_id) for e in self.ending if e.change.alert_id is not None]
        await repository.resolve_alerts(session, [alert_id for _, alert_id in resolved], now)
        await repository.delete_conditions(session, [e.change.key for e in self.ending])
        return [self._resolved(e, alert_id) for e, alert_id in resolved]

    def _resolved(self, ending: _Ending, alert_id: int) -> Transition:
        change = ending.change
        rule = self.rules.get(change.rule_id)
        return Transition(
            to="resolved",
            alert_id=alert_id,
            rule_id=change.rule_id,
            node_id=change.node_id,
            metric=rule.metric if rule else "",
            severity=rule.severity if rule else "",
            value=None,
            threshold=_threshold(rule) if rule else 0.0,
            at=self.now,
            reason=ending.reason,
        )


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
