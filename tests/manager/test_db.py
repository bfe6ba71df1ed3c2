"""The embedded SQLite database on disk: who may read it."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from opscaffold.manager import migrate
from opscaffold.manager.app import create_app
from opscaffold.manager.runtime import Runtime
from tests.manager.conftest import ADMIN_PASSWORD, backend_settings, login


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode)
        for p in [root, *root.rglob("*")]
    }


async def start_and_log_in(data_dir: Path) -> dict[str, int]:
    """Migrate, start the Manager, log in (a write: WAL and shared memory exist), and return
    the mode of everything under the data directory while it runs."""
    settings = backend_settings("sqlite", data_dir, OPS_ADMIN_PASSWORD=ADMIN_PASSWORD)
    await asyncio.to_thread(migrate.upgrade, settings)
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime=runtime)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://manager") as http:
                await login(http)
            return modes(data_dir)
    finally:
        await runtime.close()


async def test_a_fresh_data_directory_is_the_owners_only(tmp_path: Path) -> None:
    """Password hashes, token digests and secrets: nobody else on the host reads them, even
    under the most permissive umask."""
    data_dir = tmp_path / "data"
    with umask(0):
        found = await start_and_log_in(data_dir)
    for name in ("data/manager.db", "data/manager.db-wal", "data/manager.db-shm"):
        assert name in found
    wider = {
        name: oct(mode)
        for name, mode in found.items()
        if mode & 0o077 or mode & 0o700 not in (0o600, 0o700)
    }
    assert wider == {}
    assert found["data"] == 0o700


async def test_database_files_left_readable_are_made_private_on_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await start_and_log_in(data_dir)
    for name in ("manager.db", "manager.db-wal", "manager.db-shm"):
        if (data_dir / name).exists():
            os.chmod(data_dir / name, 0o644)

    found = await start_and_log_in(data_dir)

    assert found["data/manager.db"] == 0o600
    assert found["data/manager.db-wal"] == 0o600
    assert found["data/manager.db-shm"] == 0o600
