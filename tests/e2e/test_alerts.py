"""Alerting through real processes: simulated nodes whose CPU goes high fire a rule after its
duration and resolve when it drops; a killed daemon fires `node_offline`; two Managers sharing
a MariaDB database evaluate together and record one alert per condition."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from opscaffold.fleet.simulator import Fleet, FleetConfig
from opscaffold.manager.config import load_settings
from opscaffold.manager.db import database_url
from opscaffold.manager.models import JobClaim
from tests.conftest import require_service, slot_name
from tests.e2e.processes import Api, Daemon, Manager
from tests.e2e.test_daemon_process import ADMIN_PASSWORD, ENROLLMENT_TOKEN, FAST, online_node
from tests.helpers import poll_until
from tests.manager.conftest import recreate_database

pytestmark = pytest.mark.timeout(120)
ALERTING = FAST | {"OPS_ALERT__EVALUATION_INTERVAL": "1s"}
CALM, HOT = {"cpu_usage": 20.0}, {"cpu_usage": 97.0}


def cpu_rule(duration: int) -> dict[str, Any]:
    return {
        "name": "cpu high",
        "metric": "cpu_usage",
        "operator": "gt",
        "threshold": 90,
        "duration": duration,
        "severity": "critical",
    }


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def alerts(api: Api, **filters: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get("/alerts", page_size=100, **filters)["items"]
    return items


async def until(check: Callable[[], Any], what: str, timeout: float = 40) -> Any:
    """Poll a blocking check off the event loop the fleet runs on."""
    try:
        async with asyncio.timeout(timeout):
            while not (value := await asyncio.to_thread(check)):
                await asyncio.sleep(0.2)
            return value
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting until {what}") from None


def finished(manager: Manager, job: str) -> int:
    """Runs of `job` the Manager has finished, read from its SQLite database."""
    database = Path(manager.env["OPS_DATA_DIR"]) / "manager.db"
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM job_claims WHERE job = ? AND finished_at IS NOT NULL", (job,)
        ).fetchone()
    return int(count)


def evaluations(manager: Manager) -> int:
    return finished(manager, "alert.evaluate")


def two_more_evaluations(manager: Manager) -> Callable[[], bool]:
    start = evaluations(manager)
    return lambda: evaluations(manager) >= start + 2


def fleet_of(manager: Manager, nodes: int) -> Fleet:
    return Fleet(
        FleetConfig(
            manager=f"127.0.0.1:{manager.grpc_port}",
            enrollment_token=ENROLLMENT_TOKEN,
            nodes=nodes,
            channels=1,
            ramp=0.2,
            heartbeat_interval=0.5,
            metric_interval=0.5,
            pinned_metrics=CALM,
        )
    )


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    instance = Manager(tmp_path, ALERTING)
    instance.start()
    yield instance
    instance.ensure_stopped()


async def test_a_cpu_rule_fires_after_its_duration_and_resolves_on_simulated_nodes(
    manager: Manager,
) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    rule = api.send("POST", "/alerts/rules", cpu_rule(duration=3))
    fleet = fleet_of(manager, 3)
    running = asyncio.create_task(fleet.run())
    try:
        await until(lambda: api.get("/nodes", status="online")["total"] == 3, "nodes online")
        await until(two_more_evaluations(manager), "calm nodes are evaluated")
        assert alerts(api) == []  # nothing holds: nothing is recorded

        hot_from = datetime.now(UTC).replace(microsecond=0)
        fleet.pin_metrics(HOT, nodes=[0, 1])
        firing = await until(
            lambda: len(found := alerts(api, status="firing")) == 2 and found, "2 alerts fire"
        )
        for alert in firing:
            # held for the rule's duration first: never earlier than 3 s after going hot
            assert parse(alert["fired_at"]) >= hot_from + timedelta(seconds=3)
            assert alert["current_value"] > 90
            assert alert["rule_id"] == rule["id"]
        hot_nodes = {a["node_id"] for a in firing}

        fleet.pin_metrics(CALM, nodes=[0, 1])
        resolved = await until(
            lambda: len(found := alerts(api, status="resolved")) == 2 and found, "both resolve"
        )
        assert {a["node_id"] for a in resolved} == hot_nodes
        assert len(alerts(api)) == 2  # resolved in place, no new rows
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def test_a_killed_daemon_fires_node_offline_and_its_return_resolves_it(
    manager: Manager, tmp_path: Path
) -> None:
    api = Api(manager, ADMIN_PASSWORD)
    api.send("POST", "/alerts/rules", {"name": "down", "metric": "node_offline", "duration": 0})
    daemon = Daemon(manager, tmp_path / "node-a", ENROLLMENT_TOKEN)
    daemon.start()
    try:
        node = poll_until(lambda: online_node(api), what="the node comes online")
        poll_until(two_more_evaluations(manager), what="the online node is evaluated")
        assert alerts(api) == []

        daemon.kill()
        [alert] = poll_until(lambda: alerts(api, status="firing"), what="node_offline fires")
        assert (alert["node_id"], alert["metric"]) == (node["id"], "node_offline")

        daemon.start()
        poll_until(lambda: alerts(api, status="resolved"), what="it resolves once back online")
        assert len(alerts(api)) == 1
    finally:
        daemon.stop()


async def test_two_managers_on_one_mariadb_record_one_alert_per_condition(
    tmp_path: Path,
) -> None:
    require_service("mysql")
    database = {
        "OPS_DATABASE__DRIVER": "mysql",
        "OPS_DATABASE__HOST": "127.0.0.1",
        "OPS_DATABASE__USER": "root",
        "OPS_DATABASE__NAME": slot_name("opscaffold_e2e_alerts"),
        "OPS_DATABASE__AUTO_MIGRATE": "true",
        # one set of secrets, so a session of one replica is good on the other
        "OPS_AUTH__JWT__ACCESS_SECRET": "e2e-access-secret-0123456789abcdef0123456789",
        "OPS_AUTH__JWT__REFRESH_SECRET": "e2e-refresh-secret-0123456789abcdef012345678",
    }
    settings = load_settings(None, {"OPS_DATA_DIR": str(tmp_path)} | database)
    await recreate_database(settings)
    # Different intervals: each replica has ticks of its own, and they meet on shared ones.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = Manager(tmp_path / "a", ALERTING | database | {"OPS_ALERT__EVALUATION_INTERVAL": "2s"})
    second = Manager(tmp_path / "b", ALERTING | database | {"OPS_ALERT__EVALUATION_INTERVAL": "3s"})
    await asyncio.to_thread(first.start)
    await asyncio.to_thread(second.start)
    engine = create_async_engine(database_url(settings.database))

    async def evaluators() -> set[str]:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(JobClaim.claimed_by)
                .where(JobClaim.job == "alert.evaluate", JobClaim.finished_at.is_not(None))
                .distinct()
            )
            return {str(r[0]) for r in rows}

    fleet = fleet_of(first, 4)
    running = asyncio.create_task(fleet.run())
    try:
        api = Api(second, ADMIN_PASSWORD)
        api.send("POST", "/alerts/rules", cpu_rule(duration=0))
        api.send("POST", "/alerts/rules", cpu_rule(duration=2) | {"name": "cpu high, held"})
        await until(lambda: api.get("/nodes", status="online")["total"] == 4, "nodes online")
        fleet.pin_metrics(HOT)
        await until(lambda: len(alerts(api, status="firing")) == 8, "every condition fires")
        before = await evaluators()
        await until(lambda: len(alerts(api)) == 8, "a while later")
        # let both replicas evaluate several times more with every condition still holding
        await asyncio.wait_for(_more_evaluations(evaluators, engine, 6), 30)
        assert len(await evaluators() | before) == 2, "both replicas evaluated"
        found = alerts(api)
        assert len(found) == 8
        assert len({(a["rule_id"], a["node_id"]) for a in found}) == 8

        fleet.pin_metrics(CALM)
        await until(lambda: len(alerts(api, status="resolved")) == 8, "every condition resolves")
        assert len(alerts(api)) == 8
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await engine.dispose()
        first.ensure_stopped()
        second.ensure_stopped()


async def _more_evaluations(evaluators: Callable[[], Any], engine: Any, count: int) -> None:
    async def done() -> int:
        async with engine.connect() as conn:
            stmt = sa.select(sa.func.count()).where(
                JobClaim.job == "alert.evaluate", JobClaim.finished_at.is_not(None)
            )
            return int((await conn.execute(stmt)).scalar_one())

    start = await done()
    while await done() < start + count or len(await evaluators()) < 2:
        await asyncio.sleep(0.5)
