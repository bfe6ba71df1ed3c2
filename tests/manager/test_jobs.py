"""The job catalogue and `ops-manager run-job`: one job now, claimed like a scheduled tick."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import opscaffold.manager
from opscaffold.manager import app as manager_app
from opscaffold.manager import migrate
from opscaffold.manager.config import load_settings
from opscaffold.manager.db import create_engine
from opscaffold.manager.jobs.registry import Job, collect, job
from opscaffold.manager.models import Node
from tests.manager.test_migrations import run_cli

EXPECTED = {
    "alert.evaluate",
    "auth.prune_sessions",
    "command.expire",
    "jobs.prune_claims",
    "metrics.partitions",
    "metrics.rollup",
    "node.detect_offline",
    "notification.deliver",
    "rollout.advance",
    "task.fire_schedules",
    "task.time_out",
    "version.sweep_files",
}


def test_the_app_runs_every_job_a_domain_declares() -> None:
    declaring = set()
    for info in pkgutil.walk_packages(opscaffold.manager.__path__, "opscaffold.manager."):
        if ".migrations" in info.name:  # Alembic's env.py runs on import
            continue
        if collect([importlib.import_module(info.name)]):
            declaring.add(info.name)
    assert declaring == {module.__name__ for module in manager_app.JOB_MODULES}
    assert set(manager_app.all_jobs()) == EXPECTED


def test_a_job_name_declared_twice_is_refused() -> None:
    async def noop(*_: object) -> None:
        return None

    first = job("x.run", every=lambda _: timedelta(minutes=1))(noop)
    second = job("x.run", every=lambda _: timedelta(minutes=1))(noop)
    module_a = type(pytest)("a")
    module_b = type(pytest)("b")
    setattr(module_a, "first", first)  # noqa: B010
    setattr(module_b, "second", second)  # noqa: B010
    assert isinstance(first, Job)
    with pytest.raises(ValueError, match=r"x\.run is declared twice"):
        collect([module_a, module_b])
    assert collect([module_a, module_a]) == {"x.run": first}


@pytest.mark.e2e
async def test_run_job_claims_one_job_now(tmp_path: Path) -> None:
    env = {"OPS_DATA_DIR": str(tmp_path)}
    settings = load_settings(None, env)
    await asyncio.to_thread(migrate.upgrade, settings)
    engine = create_engine(settings.database)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(Node).values(
                    uuid="00000000-0000-4000-8000-000000000001",
                    hostname="quiet",
                    ip="192.0.2.10",
                    status="online",
                    last_heartbeat=datetime(2020, 1, 1),
                )
            )
        code, out, err = await run_cli(env, "run-job", "node.detect_offline")
        assert code == 0, err
        assert "node.detect_offline: done" in out
        async with engine.connect() as conn:
            status = await conn.scalar(sa.select(Node.status))
            claims = await conn.scalar(sa.text("SELECT COUNT(*) FROM job_claims"))
        assert status == "offline"  # silent since 2020: its deadline passed long ago
        assert claims == 1
    finally:
        await engine.dispose()


@pytest.mark.e2e
async def test_run_job_lists_the_jobs_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    env = {"OPS_DATA_DIR": str(tmp_path)}
    code, out, _ = await run_cli(env, "run-job")
    assert code == 0
    assert set(out.split()) == EXPECTED
    code, _, err = await run_cli(env, "run-job", "no.such_job")
    assert code == 2
    assert "no job 'no.such_job'" in err
