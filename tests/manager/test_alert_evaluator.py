"""The alert evaluator, driven through time explicitly: pending, firing after the rule's
duration and not before, resolving, keep_firing_for, targets, silences, one alert per
condition however many evaluations race, and a fixed number of statements per evaluation."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from opscaffold.manager.alert import evaluator, repository
from opscaffold.manager.alert.evaluator import Evaluation
from opscaffold.manager.app import all_jobs
from opscaffold.manager.db import transaction
from opscaffold.manager.jobs.runner import JobRunner
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import (
    Agent,
    Alert,
    AlertCondition,
    AlertRule,
    AlertSilence,
    Node,
    NodeMetricLatest,
    NodeTag,
)
from tests.manager import factories as f
from tests.manager.conftest import Stack

STALE_AFTER = timedelta(minutes=5)
T0 = utcnow().replace(second=0)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def evaluate(stack: Stack, now: datetime) -> Evaluation:
    async with transaction(stack.runtime.sessions) as session:
        return await evaluator.evaluate(session, now, STALE_AFTER)


async def add_rule(stack: Stack, **values: Any) -> int:
    row = {
        "name": "rule",
        "metric": "cpu_usage",
        "operator": "gt",
        "threshold": 90,
        "duration": 60,
        "severity": "warning",
        "target_type": "all",
        "status": "enabled",
        "created_by": 1,
        "keep_firing_for": 0,
        **values,
    }
    async with stack.runtime.engine.begin() as conn:
        result = await conn.execute(sa.insert(AlertRule).values(**row))
        return int(result.inserted_primary_key[0])  # type: ignore[index]


async def set_rule(stack: Stack, rule_id: int, **values: Any) -> None:
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.update(AlertRule).where(AlertRule.id == rule_id).values(**values))


async def report(stack: Stack, node_id: int, when: datetime, **values: Any) -> None:
    """The node's latest metrics become `values` (cpu_usage by default 10), reported `when`."""
    row = {"cpu_usage": 10.0, "memory_used": 1_000, **values}
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.delete(NodeMetricLatest).where(NodeMetricLatest.node_id == node_id))
        await conn.execute(
            sa.insert(NodeMetricLatest).values(node_id=node_id, timestamp=when, **row)
        )


async def alerts(stack: Stack) -> list[Alert]:
    async with stack.runtime.sessions() as session:
        return list(await session.scalars(sa.select(Alert).order_by(Alert.id)))


def moves(result: Evaluation) -> list[tuple[str, int, int]]:
    return sorted((t.to, t.rule_id, t.node_id) for t in result.transitions)


@pytest.fixture
async def clean(stack: Stack, client: httpx.AsyncClient) -> Stack:
    """An empty database (the client fixture empties it)."""
    return stack


async def test_a_condition_fires_after_its_duration_not_before_and_resolves(
    clean: Stack,
) -> None:
    stack = clean
    rule = await add_rule(stack, duration=60)
    hot, cool = await f.add_node(stack, "hot"), await f.add_node(stack, "cool")
    await report(stack, hot, at(0), cpu_usage=95.5)
    await report(stack, cool, at(0), cpu_usage=50)

    first = await evaluate(stack, at(0))
    assert (first.rules, first.holding, first.pending, first.transitions) == (1, 1, 1, [])
    assert moves(await evaluate(stack, at(30))) == []
    assert await alerts(stack) == []

    fired = await evaluate(stack, at(60))
    assert moves(fired) == [("firing", rule, hot)]
    [alert] = await alerts(stack)
    assert (alert.rule_id, alert.node_id, alert.status) == (rule, hot, "firing")
    assert (alert.current_value, alert.threshold, alert.metric) == (95.5, 90.0, "cpu_usage")
    assert alert.fired_at == at(60)
    assert alert.resolved_at is None
    assert fired.transitions[0].alert_id == alert.id
    assert not fired.transitions[0].silenced

    assert moves(await evaluate(stack, at(90))) == []  # still firing: no second alert
    assert len(await alerts(stack)) == 1

    await report(stack, hot, at(100), cpu_usage=40)
    resolved = await evaluate(stack, at(120))
    assert moves(resolved) == [("resolved", rule, hot)]
    assert resolved.transitions[0].reason == "cleared"
    [alert] = await alerts(stack)
    assert (alert.status, alert.resolved_at, alert.open_key) == ("resolved", at(120), None)

    # holding again later is a new condition, with an alert of its own
    await report(stack, hot, at(130), cpu_usage=99)
    await evaluate(stack, at(150))
    assert moves(await evaluate(stack, at(210))) == [("firing", rule, hot)]
    assert [a.status for a in await alerts(stack)] == ["resolved", "firing"]


async def test_a_pending_condition_that_clears_starts_over(clean: Stack) -> None:
    stack = clean
    rule = await add_rule(stack, duration=60, operator="gte", threshold=80)
    node = await f.add_node(stack, "n")
    await report(stack, node, at(0), cpu_usage=80)
    await evaluate(stack, at(0))
    await report(stack, node, at(20), cpu_usage=79.99)
    await evaluate(stack, at(30))  # cleared before 60 s: back to inactive
    await report(stack, node, at(35), cpu_usage=85)
    await evaluate(stack, at(40))  # pending again, since 40
    assert moves(await evaluate(stack, at(90))) == []  # 50 s, not 60
    assert moves(await evaluate(stack, at(100))) == [("firing", rule, node)]


async def test_keep_firing_for_holds_a_flapping_alert_open(clean: Stack) -> None:
    stack = clean
    rule = await add_rule(stack, duration=0, keep_firing_for=60)
    node = await f.add_node(stack, "n")
    await report(stack, node, at(0), cpu_usage=95)
    assert moves(await evaluate(stack, at(0))) == [("firing", rule, node)]  # duration 0
    await report(stack, node, at(25), cpu_usage=20)
    assert moves(await evaluate(stack, at(30))) == []  # cleared, kept firing
    await report(stack, node, at(35), cpu_usage=96)
    assert moves(await evaluate(stack, at(40))) == []  # held again: the clock resets
    await report(stack, node, at(45), cpu_usage=20)
    assert moves(await evaluate(stack, at(50))) == []  # cleared since 50
    assert moves(await evaluate(stack, at(100))) == []  # 50 s clear, not 60
    assert moves(await evaluate(stack, at(110))) == [("resolved", rule, node)]
    [alert] = await alerts(stack)
    assert alert.fired_at == at(0)
    assert alert.resolved_at == at(110)


async def test_boolean_rules_and_targets(clean: Stack) -> None:
    stack = clean
    parent = await f.add_group(stack, "prod")
    child = await f.add_group(stack, "prod-db", parent_id=parent)
    in_child = await f.add_node(stack, "db-1", group_id=child, status="offline")
    outside = await f.add_node(stack, "misc", status="offline")
    tagged = await f.add_node(stack, "edge", tags=["Edge"], status="offline")
    online = await f.add_node(stack, "web", status="online")
    stopped = await f.add_node(stack, "web-2", status="online", tags=["edge"])
    await f.add_agent(stack, online, status="running")
    await f.add_agent(stack, stopped, status="stopped")
    await f.add_agent(stack, outside, status="stopped")  # its node is offline: not this rule

    by_group = await add_rule(
        stack, metric="node_offline", duration=0, target_type="group", target_value=[str(parent)]
    )
    by_tag = await add_rule(
        stack, metric="node_offline", duration=0, target_type="tag", target_value=["EDGE"]
    )
    by_node = await add_rule(
        stack, metric="node_offline", duration=0, target_type="node", target_value=[str(outside)]
    )
    agents = await add_rule(stack, metric="agent_not_running", duration=0)
    await add_rule(stack, metric="node_offline", duration=0, status="disabled")

    result = await evaluate(stack, at(0))
    assert moves(result) == sorted(
        [
            ("firing", by_group, in_child),
            ("firing", by_tag, tagged),
            ("firing", by_node, outside),
            ("firing", agents, stopped),
        ]
    )
    boolean = [a for a in await alerts(stack) if a.rule_id == agents]
    assert [(a.current_value, a.threshold) for a in boolean] == [(1.0, 1.0)]

    # the node comes back, the agent is started: both resolve
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(
            sa.update(Agent).where(Agent.node_id == stopped).values(status="running")
        )
    await f.add_node(stack, "db-2", group_id=child, status="offline")  # new, fires too
    later = await evaluate(stack, at(30))
    assert [(t.to, t.rule_id) for t in sorted(later.transitions, key=lambda t: t.to)] == [
        ("firing", by_group),
        ("resolved", agents),
    ]


async def test_stale_metrics_are_no_data_and_byte_thresholds_work(clean: Stack) -> None:
    stack = clean
    cpu = await add_rule(stack, duration=0)
    memory = await add_rule(
        stack, metric="memory_used", operator="gt", threshold=8_000_000_000, duration=0
    )
    silent = await f.add_node(stack, "silent")
    big = await f.add_node(stack, "big")
    await report(stack, silent, at(0) - STALE_AFTER - timedelta(seconds=1), cpu_usage=99)
    await report(stack, big, at(0), memory_used=9_000_000_000)
    assert moves(await evaluate(stack, at(0))) == [("firing", memory, big)]
    # a firing metric alert resolves once its node's metrics go stale
    await report(stack, silent, at(10), cpu_usage=99)
    assert moves(await evaluate(stack, at(20))) == [("firing", cpu, silent)]
    assert moves(await evaluate(stack, at(10) + STALE_AFTER + timedelta(seconds=1))) == [
        ("resolved", cpu, silent),
        ("resolved", memory, big),
    ]


async def test_disabled_or_deleted_rules_and_nodes_leaving_the_target_resolve(
    clean: Stack,
) -> None:
    stack = clean
    a = await add_rule(stack, duration=0, keep_firing_for=600)
    b = await add_rule(stack, duration=0, keep_firing_for=600)
    c = await add_rule(stack, duration=60)
    node = await f.add_node(stack, "n")
    await report(stack, node, at(0), cpu_usage=99)
    await evaluate(stack, at(0))
    await set_rule(stack, a, status="disabled")
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.delete(AlertRule).where(AlertRule.id.in_([b, c])))
    result = await evaluate(stack, at(10))
    # at once, whatever keep_firing_for; the pending one just ends
    assert moves(result) == [("resolved", a, node), ("resolved", b, node)]
    assert {t.reason for t in result.transitions} == {"rule disabled or deleted"}
    assert await f.count_rows(stack, AlertCondition) == 0


async def test_nodes_that_leave_the_target_or_the_fleet_resolve(clean: Stack) -> None:
    stack = clean
    racks, other = await f.add_group(stack, "racks"), await f.add_group(stack, "other")
    in_group = await add_rule(
        stack, duration=0, target_type="group", target_value=[str(racks)], name="group"
    )
    tagged = await add_rule(stack, duration=0, target_type="tag", target_value=["db"], name="tag")
    offline = await add_rule(stack, metric="node_offline", duration=0, name="offline")
    moved = await f.add_node(stack, "moved", group_id=racks)
    untagged = await f.add_node(stack, "untagged", tags=["db"])
    removed = await f.add_node(stack, "removed", status="offline")
    for node in (moved, untagged):
        await report(stack, node, at(0), cpu_usage=99)
    assert moves(await evaluate(stack, at(0))) == sorted(
        [("firing", in_group, moved), ("firing", tagged, untagged), ("firing", offline, removed)]
    )

    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.update(Node).where(Node.id == moved).values(group_id=other))
        await conn.execute(sa.delete(NodeTag).where(NodeTag.node_id == untagged))
        await conn.execute(sa.delete(Node).where(Node.id == removed))
    for node in (moved, untagged):
        await report(stack, node, at(10), cpu_usage=99)  # still hot: only the target changed
    result = await evaluate(stack, at(20))
    assert moves(result) == sorted(
        [
            ("resolved", in_group, moved),
            ("resolved", tagged, untagged),
            ("resolved", offline, removed),
        ]
    )
    assert {t.reason for t in result.transitions} == {"cleared"}
    assert await f.count_rows(stack, AlertCondition) == 0


async def test_a_pending_condition_fires_once_its_rules_duration_is_lowered(clean: Stack) -> None:
    stack = clean
    rule = await add_rule(stack, duration=600)
    node = await f.add_node(stack, "n")
    await report(stack, node, at(0), cpu_usage=99)
    assert moves(await evaluate(stack, at(0))) == []
    await set_rule(stack, rule, duration=0)
    fired = await evaluate(stack, at(10))
    assert moves(fired) == [("firing", rule, node)]
    [alert] = await alerts(stack)
    assert (alert.id, alert.fired_at, alert.current_value) == (
        fired.transitions[0].alert_id,
        at(10),
        99,
    )


async def test_only_the_conditions_that_move_are_read_back(clean: Stack) -> None:
    """What holds is compared with the conditions in the database: a steady evaluation reads
    back no condition, one where a node cools reads back that one."""
    stack = clean
    rule = await add_rule(stack, duration=0)
    nodes = [await f.add_node(stack, f"n{i}") for i in range(20)]
    for node in nodes:
        await report(stack, node, at(0), cpu_usage=99)
    assert len((await evaluate(stack, at(0))).transitions) == 20

    async def changes_at(when: datetime) -> list[repository.Change]:
        async with transaction(stack.runtime.sessions) as session:
            [check] = [evaluator._check(r, None) for r in await repository.enabled_rules(session)]
            return await repository.changes(session, [check], when, when - STALE_AFTER)

    assert await changes_at(at(10)) == []
    await report(stack, nodes[3], at(15), cpu_usage=5)
    [cooled] = await changes_at(at(20))
    assert (cooled.rule_id, cooled.node_id, cooled.holds) == (rule, nodes[3], False)
    result = await evaluate(stack, at(20))
    assert (result.holding, moves(result)) == (19, [("resolved", rule, nodes[3])])


async def test_a_silenced_transition_is_marked_and_still_recorded(clean: Stack) -> None:
    stack = clean
    rule = await add_rule(stack, duration=0)
    muted, loud = await f.add_node(stack, "muted"), await f.add_node(stack, "loud")
    for node in (muted, loud):
        await report(stack, node, at(0), cpu_usage=99)
    async with stack.runtime.engine.begin() as conn:
        result = await conn.execute(
            sa.insert(AlertSilence).values(
                target_type="node",
                target_value=str(muted),
                reason="maintenance",
                starts_at=at(-60),
                ends_at=at(3600),
                created_by=1,
                created_at=at(-60),
                updated_at=at(-60),
            )
        )
        silence = int(result.inserted_primary_key[0])  # type: ignore[index]
    fired = {t.node_id: t.silenced_by for t in (await evaluate(stack, at(0))).transitions}
    assert fired == {muted: (silence,), loud: ()}
    assert len(await alerts(stack)) == 2
    del rule


async def test_one_alert_per_condition_however_evaluations_race(clean: Stack) -> None:
    stack = clean
    rules = [await add_rule(stack, duration=0) for _ in range(3)]
    nodes = [await f.add_node(stack, f"n{i}") for i in range(5)]
    for node in nodes:
        await report(stack, node, utcnow(), cpu_usage=99)

    # two sessions evaluating the same moment at once
    results = await asyncio.gather(*(evaluate(stack, utcnow()) for _ in range(4)))
    assert sum(len(r.transitions) for r in results) == 15
    assert len(await alerts(stack)) == 15

    # two replicas' job runners on two claimed ticks at once
    job = all_jobs()["alert.evaluate"]
    runners = [
        JobRunner(stack.runtime.sessions, stack.settings, {job.name: job}, f"replica-{i}")
        for i in range(2)
    ]
    await report(stack, nodes[0], utcnow(), cpu_usage=1)
    ran = await asyncio.gather(
        *(
            r.run_once(job, datetime(2001, 1, 1) + timedelta(seconds=i))
            for i, r in enumerate(runners)
        )
    )
    assert ran == [True, True]
    statuses = sorted((a.rule_id, a.node_id, a.status) for a in await alerts(stack))
    assert len(statuses) == 15
    assert [s for s in statuses if s[2] == "resolved"] == [(r, nodes[0], "resolved") for r in rules]

    # an evaluation with an older clock than the last one gives way
    assert (await evaluate(stack, T0 - timedelta(hours=1))).evaluated is False


async def test_the_database_refuses_a_second_open_alert_for_a_condition(clean: Stack) -> None:
    stack = clean
    row = {
        "rule_id": 1,
        "node_id": 1,
        "metric": "cpu_usage",
        "current_value": 1,
        "threshold": 1,
        "severity": "info",
        "fired_at": at(0),
        "open_key": "1:1",
    }
    async with stack.runtime.engine.begin() as conn:
        await conn.execute(sa.insert(Alert).values(**row))
        await conn.execute(
            sa.insert(Alert).values(**row | {"status": "resolved", "open_key": None})
        )
        await conn.execute(
            sa.insert(Alert).values(**row | {"status": "resolved", "open_key": None})
        )
    with pytest.raises(IntegrityError):
        async with stack.runtime.engine.begin() as conn:
            await conn.execute(sa.insert(Alert).values(**row))


async def test_an_evaluation_is_a_fixed_number_of_statements_whatever_the_fleet(
    clean: Stack,
) -> None:
    stack = clean
    group = await f.add_group(stack, "g")
    await add_rule(stack, duration=0)
    await add_rule(stack, duration=0, target_type="group", target_value=[str(group)])
    await add_rule(stack, metric="node_offline", duration=0, target_type="tag", target_value=["x"])
    await add_rule(stack, metric="agent_not_running", duration=30)

    async def statements_for(count: int, start: int) -> int:
        for i in range(count):
            node = await f.add_node(
                stack, f"n{start + i}", group_id=group, tags=["x"], status="offline"
            )
            await report(stack, node, at(start), cpu_usage=99)
        with f.counting_statements(stack, this_task_only=True) as statements:
            result = await evaluate(stack, at(start))
        assert len(result.transitions) == 3 * count
        assert statements  # the evaluation's own are counted
        return len(statements)

    assert await statements_for(3, 0) == await statements_for(30, 100)
