"""A task on a cron schedule through real processes: two Managers share MariaDB (and Redis,
which carries a command to the replica holding the daemon's stream), and a per-minute task
runs on a real daemon's Agent once a minute — each fire by one replica only.

Cron counts in minutes, so the test waits for two minute boundaries (about 1.5–2 minutes):
one fire alone would not show that the next minute fires once too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from opscaffold.manager import migrate
from opscaffold.manager.config import load_settings
from opscaffold.manager.db import database_url
from opscaffold.manager.models import JobClaim
from opscaffold.protocol import task as protocol
from tests.conftest import require_service, slot_name
from tests.e2e.processes import Api, Daemon, Manager
from tests.e2e.test_daemon_process import ADMIN_PASSWORD, ENROLLMENT_TOKEN, FAST, online_node
from tests.fixtures.redis_server import RedisServer
from tests.helpers import poll_until
from tests.manager.conftest import recreate_database

pytestmark = pytest.mark.timeout(360)
PASS = "task.fire_schedules"
START_S = 90.0  # two Managers and a daemon starting on a shared machine


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.removesuffix("Z"))


def scheduled(api: Api, task_id: int) -> list[dict[str, Any]]:
    """The task's executions, oldest first."""
    items: list[dict[str, Any]] = api.get(f"/tasks/{task_id}/executions", page_size=100)["items"]
    return items[::-1]


def finished(api: Api, task_id: int, count: int) -> list[dict[str, Any]] | None:
    found = scheduled(api, task_id)
    done = [e for e in found if e["status"] == "finished"]
    return found if len(done) >= count else None


async def passes_since(engine: AsyncEngine, since: datetime) -> set[str]:
    """The replicas that have finished a scheduler pass begun after `since`."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(JobClaim.claimed_by)
            .where(
                JobClaim.job == PASS,
                JobClaim.scheduled_at > since,
                JobClaim.finished_at.is_not(None),
            )
            .distinct()
        )
        return {str(r[0]) for r in rows}


async def test_two_managers_fire_a_per_minute_task_once_a_minute_on_a_real_daemon(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    require_service("mysql")
    key_file = tmp_path / "task_signing_key.pem"  # one key: a node trusts either replica
    key_file.write_bytes(protocol.private_pem(protocol.generate_key()))
    key_file.chmod(0o600)
    shared = {
        "OPS_DATABASE__DRIVER": "mysql",
        "OPS_DATABASE__HOST": "127.0.0.1",
        "OPS_DATABASE__USER": "root",
        "OPS_DATABASE__NAME": slot_name("opscaffold_e2e_cron"),
        "OPS_DATABASE__AUTO_MIGRATE": "true",
        "OPS_REDIS__ENABLED": "true",
        "OPS_REDIS__HOST": "127.0.0.1",
        "OPS_REDIS__PORT": str(redis_server.port),
        "OPS_AUTH__JWT__ACCESS_SECRET": "e2e-access-secret-0123456789abcdef0123456789",
        "OPS_AUTH__JWT__REFRESH_SECRET": "e2e-refresh-secret-0123456789abcdef012345678",
        "OPS_TASK__SIGNING_KEY_FILE": str(key_file),
    }
    settings = load_settings(None, {"OPS_DATA_DIR": str(tmp_path)} | shared)
    await recreate_database(settings)
    await asyncio.to_thread(migrate.upgrade, settings)  # once, before either replica starts
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # Different pass intervals: the replicas meet on shared ticks and race between them.
    first = Manager(tmp_path / "a", FAST | shared | {"OPS_TASK__SCHEDULE_INTERVAL": "2s"})
    second = Manager(tmp_path / "b", FAST | shared | {"OPS_TASK__SCHEDULE_INTERVAL": "3s"})
    daemon = Daemon(first, tmp_path / "node", ENROLLMENT_TOKEN)
    engine = create_async_engine(database_url(settings.database))
    try:
        await asyncio.to_thread(first.start, START_S)
        daemon.start()  # its stream is held by the first replica
        await asyncio.to_thread(second.start, START_S)
        api = Api(second, ADMIN_PASSWORD)
        await asyncio.to_thread(poll_until, lambda: online_node(api), what="the node is online")

        task = api.send(
            "POST",
            "/tasks",
            {
                "name": "every minute",
                "type": "script",
                "content": {"script": "echo scheduled"},
                "cron_expr": "* * * * *",
                "timeout": 30,
                "target_type": "all",
            },
        )
        first_fire = parse(task["next_run_at"])
        assert first_fire.second == 0
        two = await asyncio.to_thread(
            poll_until,
            lambda: finished(api, task["id"], 2),
            timeout=150,
            what="two scheduled fires have run",
            every=1.0,  # for minutes: 20 requests a second would pass the rate limit
        )
        # both replicas have looked again since the second fire: a duplicate would show now
        await asyncio.wait_for(
            _until_both_passed(engine, first_fire + timedelta(minutes=1, seconds=1)), 30
        )

        fires = scheduled(api, task["id"])
        assert len(fires) == 2, fires
        minutes = [parse(e["created_at"]).replace(second=0) for e in fires]
        assert minutes == [first_fire, first_fire + timedelta(minutes=1)]
        for execution in two:
            assert execution["triggered_by"] == "schedule"
            assert execution["counts"]["success"] == execution["total"] == 1
            assert parse(execution["created_at"]) - parse(execution["created_at"]).replace(
                second=0
            ) < timedelta(seconds=10)  # on time, not a late catch-up
            [node] = api.get(f"/executions/{execution['execution_id']}")["nodes"]
            said = api.get(
                f"/executions/{execution['execution_id']}/nodes/{node['node_id']}/output"
            )
            assert said["output"] == "scheduled\n"
        later = parse(api.get(f"/tasks/{task['id']}")["next_run_at"])
        assert later >= first_fire + timedelta(minutes=2)
    finally:
        daemon.stop()
        first.ensure_stopped()
        second.ensure_stopped()
        await engine.dispose()


async def _until_both_passed(engine: AsyncEngine, since: datetime) -> None:
    while len(await passes_since(engine, since)) < 2:
        await asyncio.sleep(0.5)
