"""Rollups, retention and partitions, on each database: computed against raw rows here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from opscaffold.manager.app import all_jobs
from opscaffold.manager.db import transaction
from opscaffold.manager.jobs.runner import JobRunner, tick_of
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.metric import jobs, partitions, rollup
from opscaffold.manager.models import NodeMetric, fleet_metrics_5m, node_metrics_5m
from opscaffold.manager.models.metric import metric_rollup_pending
from opscaffold.manager.models.metric_fields import METRIC_COLUMNS
from opscaffold.manager.models.node import MYSQL_DAILY_PARTITIONS
from tests.manager import factories as f
from tests.manager.conftest import Stack

pytestmark = pytest.mark.timeout(120)
FIVE = timedelta(minutes=5)
INTEGERS = rollup.INTEGER_COLUMNS
NO_BUDGET_LIMIT = timedelta(minutes=5)


async def queue(stack: Stack, rows: Sequence[dict[str, Any]]) -> None:
    """What the ingest flusher does with the raw rows it writes."""
    async with transaction(stack.runtime.sessions) as session:
        await rollup.mark_pending(session, [r["timestamp"] for r in rows])


async def roll_up(stack: Stack, now: datetime) -> rollup.Pass:
    return await rollup.run_pass(stack.runtime.engine, stack.settings.metrics, now, NO_BUDGET_LIMIT)


async def node_rollups(stack: Stack, node_id: int) -> dict[datetime, dict[str, Any]]:
    async with stack.runtime.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(node_metrics_5m).where(node_metrics_5m.c.node_id == node_id)
        )
        return {row.bucket: dict(row._mapping) for row in rows}


async def scope_rollups(stack: Stack, scope: int) -> dict[datetime, dict[str, Any]]:
    async with stack.runtime.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(fleet_metrics_5m).where(fleet_metrics_5m.c.group_id == scope)
        )
        return {row.bucket: dict(row._mapping) for row in rows}


async def pending(stack: Stack) -> list[datetime]:
    async with stack.runtime.engine.connect() as conn:
        return list(await conn.scalars(sa.select(metric_rollup_pending.c.bucket)))


def expected(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Average and maximum of each field, computed here from the raw rows."""
    out: dict[str, Any] = {"samples": len(rows)}
    for name in METRIC_COLUMNS:
        values = [r[name] for r in rows]
        out[f"{name}_avg"] = sum(values) / len(values)
        out[f"{name}_max"] = max(values)
    return out


def assert_matches(actual: dict[str, Any], wanted: dict[str, Any]) -> None:
    assert actual["samples"] == wanted["samples"]
    for name in METRIC_COLUMNS:
        tolerance = 0.51 if name in INTEGERS else 0.0051  # the column's rounding
        assert float(actual[f"{name}_avg"]) == pytest.approx(
            wanted[f"{name}_avg"], abs=tolerance
        ), name
        assert float(actual[f"{name}_max"]) == pytest.approx(wanted[f"{name}_max"]), name


def a_complete_bucket() -> datetime:
    """A bucket that ended long enough ago to be due, within the raw retention."""
    return rollup.bucket_of(utcnow() - timedelta(minutes=40))


async def test_rollups_equal_the_averages_and_maxima_of_the_raw_rows(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    prod = await f.add_group(stack, "prod")
    web = await f.add_group(stack, "web", prod)
    dev = await f.add_group(stack, "dev")
    nodes = {
        "web-1": await f.add_node(stack, "web-1", group_id=web),
        "db-1": await f.add_node(stack, "db-1", group_id=prod),
        "dev-1": await f.add_node(stack, "dev-1", group_id=dev),
        "loose": await f.add_node(stack, "loose"),
    }
    bucket = a_complete_bucket()
    raw: dict[str, list[dict[str, Any]]] = {}
    for i, (name, node_id) in enumerate(nodes.items()):
        # 3 to 6 reports in the bucket, different values per node; one just past its end.
        count = 3 + i
        raw[name] = await f.add_metrics(
            stack,
            node_id,
            bucket + timedelta(seconds=7),
            timedelta(seconds=41),
            count,
            offset=i * 17,
        )
        after = await f.add_metrics(stack, node_id, bucket + FIVE, timedelta(seconds=1), 1)
        await queue(stack, raw[name] + after)

    done = await roll_up(stack, utcnow())
    assert {bucket, bucket + FIVE} <= set(done.buckets)
    assert not {bucket, bucket + FIVE} & set(await pending(stack))
    for name, node_id in nodes.items():
        assert_matches((await node_rollups(stack, node_id))[bucket], expected(raw[name]))

    every = [row for rows in raw.values() for row in rows]
    scopes = {
        0: every,
        prod: raw["web-1"] + raw["db-1"],  # a group counts its sub-groups' nodes
        web: raw["web-1"],
        dev: raw["dev-1"],
    }
    for scope, rows in scopes.items():
        found = (await scope_rollups(stack, scope))[bucket]
        assert_matches(found, expected(rows))
        assert found["nodes"] == len({r["node_id"] for r in rows})


async def test_a_late_report_changes_its_rolled_up_bucket(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    node_id = await f.add_node(stack, "n1")
    bucket = a_complete_bucket()
    first = await f.add_metrics(stack, node_id, bucket, timedelta(seconds=60), 3)
    await queue(stack, first)
    await roll_up(stack, utcnow())
    assert_matches((await node_rollups(stack, node_id))[bucket], expected(first))

    late = await f.add_metrics(stack, node_id, bucket + timedelta(seconds=200), FIVE, 1, offset=7)
    await queue(stack, late)
    assert bucket in await pending(stack)
    await roll_up(stack, utcnow())
    assert_matches((await node_rollups(stack, node_id))[bucket], expected(first + late))
    assert_matches((await scope_rollups(stack, 0))[bucket], expected(first + late))


async def test_a_restarted_job_neither_skips_nor_double_counts(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    node_id = await f.add_node(stack, "n1")
    start = rollup.bucket_of(utcnow() - timedelta(hours=1))
    rows = await f.add_metrics(stack, node_id, start, timedelta(seconds=30), 100)  # 10 buckets
    await queue(stack, rows)
    buckets = sorted({rollup.bucket_of(r["timestamp"]) for r in rows})

    # A pass that dies inside a bucket's transaction: nothing of it stays.
    async with stack.runtime.engine.connect() as conn, conn.begin() as dying:
        await rollup.roll_up_bucket(conn, buckets[0])
        await dying.rollback()
    assert await node_rollups(stack, node_id) == {}

    # The job ran only up to the 4th bucket, then stopped; later it catches up.
    stopped_at = buckets[3] + FIVE + stack.settings.metrics.rollup_delay + timedelta(seconds=1)
    early = await roll_up(stack, stopped_at)
    assert early.buckets == buckets[:4]
    await roll_up(stack, utcnow())
    await roll_up(stack, utcnow())  # again: nothing left to do, nothing counted twice
    await queue(stack, rows[:1])  # a resent report: its bucket is redone, not added to
    await roll_up(stack, utcnow())

    found = await node_rollups(stack, node_id)
    assert sorted(found) == buckets
    for bucket in buckets:
        members = [r for r in rows if rollup.bucket_of(r["timestamp"]) == bucket]
        assert_matches(found[bucket], expected(members))
    assert sum(r["samples"] for r in found.values()) == len(rows)
    assert await pending(stack) == []


async def test_a_bucket_is_not_rolled_up_before_it_is_complete(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    node_id = await f.add_node(stack, "n1")
    now = utcnow()
    current = await f.add_metrics(stack, node_id, now - timedelta(seconds=5), FIVE, 1)
    await queue(stack, current)
    done = await roll_up(stack, now)
    assert done.buckets == []
    assert await pending(stack) == [rollup.bucket_of(current[0]["timestamp"])]


@pytest.fixture
async def restore_partitions(stack: Stack) -> AsyncIterator[None]:
    """Retention tests run the clock forward: give later tests back today's partitions
    (on MySQL, days below the highest one can only come back by partitioning anew)."""
    yield
    if stack.backend == "mysql":
        async with stack.runtime.engine.begin() as conn:
            for table in partitions.PARTITIONED:
                layout = MYSQL_DAILY_PARTITIONS.format(column=table.column)
                await conn.execute(sa.text(f"ALTER TABLE {table.name} PARTITION BY {layout}"))
    now = utcnow()
    await f.ensure_partitions(stack, now - timedelta(days=3), now + timedelta(days=3))


async def raw_count(stack: Stack, node_id: int) -> int:
    return await f.count_rows(stack, NodeMetric, node_id=node_id)


async def test_retention_drops_whole_expired_days_of_raw_rows_and_rollups(
    stack: Stack, client: httpx.AsyncClient, restore_partitions: None
) -> None:
    settings = stack.settings.metrics
    node_id = await f.add_node(stack, "n1")
    today = datetime.combine(utcnow().date(), datetime.min.time())
    tomorrow = today + timedelta(days=1)
    expiring = await f.add_metrics(stack, node_id, today + timedelta(minutes=1), FIVE, 3)
    kept = await f.add_metrics(stack, node_id, tomorrow + timedelta(minutes=1), FIVE, 3)
    old_rollups = await f.add_rollups(stack, node_id, today, 3)
    await f.add_rollups(stack, node_id, tomorrow, 3)

    # Two days and two hours after today ended, today's raw rows are all past the retention,
    # tomorrow's not yet (a day's partition goes once all of it has expired).
    later = tomorrow + timedelta(days=settings.raw_retention_days, hours=2)
    await jobs.maintain_partitions(stack.runtime.engine, settings, later)
    left = await f.count_rows(stack, NodeMetric, node_id=node_id)
    assert left == len(kept)
    assert later - expiring[-1]["timestamp"] > timedelta(days=settings.raw_retention_days)
    assert len(await node_rollups(stack, node_id)) == 6  # rollups live longer

    much_later = tomorrow + timedelta(days=settings.retention_days, hours=2)
    await jobs.maintain_partitions(stack.runtime.engine, settings, much_later)
    assert sorted(await node_rollups(stack, node_id)) == [tomorrow + FIVE * i for i in range(3)], (
        "only the rollups of the expired day are gone"
    )
    assert old_rollups[0]["bucket"] == today


async def test_raw_rows_waiting_for_their_rollup_are_kept(
    stack: Stack, client: httpx.AsyncClient, restore_partitions: None
) -> None:
    settings = stack.settings.metrics
    node_id = await f.add_node(stack, "n1")
    today = datetime.combine(utcnow().date(), datetime.min.time())
    rows = await f.add_metrics(stack, node_id, today + timedelta(minutes=1), FIVE, 3)
    await queue(stack, rows)  # the job has not rolled them up yet
    later = today + timedelta(days=settings.raw_retention_days + 1, hours=2)
    await jobs.maintain_partitions(stack.runtime.engine, settings, later)
    assert await raw_count(stack, node_id) == 3
    await roll_up(stack, utcnow())
    await jobs.maintain_partitions(stack.runtime.engine, settings, later)
    assert await raw_count(stack, node_id) == 0


async def test_day_partitions_exist_ahead_of_time(stack: Stack, client: httpx.AsyncClient) -> None:
    if stack.backend == "sqlite":
        pytest.skip("SQLite keeps one table")
    now = utcnow()
    await jobs.maintain_partitions(stack.runtime.engine, stack.settings.metrics, now)
    ahead = stack.settings.metrics.partition_days_ahead
    wanted = {now.date() + timedelta(days=i) for i in range(ahead + 1)}
    async with stack.runtime.engine.connect() as conn:
        for table in partitions.PARTITIONED:
            days = await conn.run_sync(partitions.existing_days, table)
            assert wanted <= set(days), table.name
            if stack.backend == "postgres":  # attached tables, one per day
                assert days[now.date()] == f"{table.name}_p{now:%Y%m%d}"


# -- reads ----------------------------------------------------------------------------------
NODES = "/api/v1/nodes"
TREND = "/api/v1/metrics/trend"


def rfc3339(at: datetime) -> str:
    return at.isoformat() + "Z"


async def test_history_of_an_hour_is_raw_and_of_a_week_is_rollups(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node_id = await f.add_node(stack, "n1")
    now = utcnow().replace(microsecond=0)
    raw = await f.add_metrics(stack, node_id, now - timedelta(minutes=59), timedelta(minutes=1), 59)
    week_start = rollup.bucket_of(now - timedelta(days=7))
    rollups = await f.add_rollups(stack, node_id, week_start, 7 * 288)
    url = f"{NODES}/{node_id}/metrics"

    hour = {"start": rfc3339(now - timedelta(hours=1)), "end": rfc3339(now)}
    points = (await client.get(url, params=hour, headers=admin_headers)).json()["data"]
    assert [p["timestamp"] for p in points] == [rfc3339(r["timestamp"]) for r in raw]
    assert [p["cpu_usage"] for p in points] == [r["cpu_usage"] for r in raw]

    week = {"start": rfc3339(week_start), "end": rfc3339(week_start + timedelta(days=7))}
    points = (await client.get(url, params=week, headers=admin_headers)).json()["data"]
    assert 0 < len(points) <= 500
    step = 1500  # ceil(7 days / 500 points), in whole 5-minute rollups
    assert points[1]["timestamp"] == rfc3339(week_start + timedelta(seconds=step))
    members = rollups[5:10]  # the second point merges rollups 5..9
    weight = sum(m["samples"] for m in members)
    cpu = sum(m["cpu_usage_avg"] * m["samples"] for m in members) / weight
    assert points[1]["cpu_usage"] == pytest.approx(cpu, abs=0.006)
    used = sum(m["memory_used_avg"] * m["samples"] for m in members) / weight
    assert points[1]["memory_used"] == pytest.approx(used, abs=0.51)
    assert set(points[1]) == {"node_id", *METRIC_COLUMNS, "timestamp"}


async def test_history_older_than_the_raw_retention_comes_from_rollups(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    node_id = await f.add_node(stack, "n1")
    start = rollup.bucket_of(utcnow() - timedelta(days=5))
    rollups = await f.add_rollups(stack, node_id, start, 12)
    params = {"start": rfc3339(start), "end": rfc3339(start + timedelta(hours=1))}
    url = f"{NODES}/{node_id}/metrics"
    points = (await client.get(url, params=params, headers=admin_headers)).json()["data"]
    assert [p["timestamp"] for p in points] == [rfc3339(r["bucket"]) for r in rollups]
    assert [p["disk_usage"] for p in points] == [r["disk_usage_avg"] for r in rollups]


async def test_fleet_trend_per_bucket_for_the_fleet_and_a_group(
    stack: Stack, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    prod = await f.add_group(stack, "prod")
    web = await f.add_group(stack, "web", prod)
    in_web = await f.add_node(stack, "web-1", group_id=web)
    elsewhere = await f.add_node(stack, "other")
    bucket = a_complete_bucket()
    web_rows = await f.add_metrics(stack, in_web, bucket, timedelta(seconds=50), 4)
    other_rows = await f.add_metrics(stack, elsewhere, bucket, timedelta(seconds=70), 3, offset=9)
    await queue(stack, web_rows + other_rows)
    await roll_up(stack, utcnow())

    fleet = (await client.get(TREND, headers=admin_headers)).json()["data"]
    point = next(p for p in fleet if p["timestamp"] == rfc3339(bucket))
    wanted = expected(web_rows + other_rows)
    assert (point["nodes"], point["samples"]) == (2, 7)
    assert point["cpu_usage_avg"] == pytest.approx(wanted["cpu_usage_avg"], abs=0.006)
    assert point["disk_usage_max"] == pytest.approx(wanted["disk_usage_max"])
    assert set(point) == {
        "timestamp",
        "nodes",
        "samples",
        *(f"{m}_{k}" for m in ("cpu_usage", "memory_usage", "disk_usage") for k in ("avg", "max")),
    }

    by_group = await client.get(TREND, params={"group_id": prod}, headers=admin_headers)
    point = next(p for p in by_group.json()["data"] if p["timestamp"] == rfc3339(bucket))
    assert (point["nodes"], point["samples"]) == (1, 4)  # web-1, in prod's sub-group
    assert point["memory_usage_max"] == pytest.approx(expected(web_rows)["memory_usage_max"])

    missing = await client.get(TREND, params={"group_id": 999999}, headers=admin_headers)
    assert missing.status_code == 404
    bad = await client.get(TREND, params={"start": "noon"}, headers=admin_headers)
    assert bad.status_code == 400
    too_long = {"start": rfc3339(bucket - timedelta(days=40)), "end": rfc3339(bucket)}
    assert (await client.get(TREND, params=too_long, headers=admin_headers)).status_code == 400


async def test_the_jobs_run_through_the_job_runner(stack: Stack, client: httpx.AsyncClient) -> None:
    """As the Manager runs them: claimed ticks, sessions from the runner."""
    node_id = await f.add_node(stack, "n1")
    bucket = a_complete_bucket()
    rows = await f.add_metrics(stack, node_id, bucket, timedelta(seconds=60), 2)
    await queue(stack, rows)
    registered = all_jobs()
    runner = JobRunner(stack.runtime.sessions, stack.settings, registered, "test-replica")
    for name in ("metrics.rollup", "metrics.partitions"):
        job = registered[name]
        assert await runner.run_once(job, tick_of(utcnow(), job.every(stack.settings)))
    assert_matches((await node_rollups(stack, node_id))[bucket], expected(rows))
    assert await pending(stack) == []
