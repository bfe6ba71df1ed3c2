"""Running Alembic from our own settings (no alembic.ini needed)."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config

from opscaffold.manager.config import Settings
from opscaffold.manager.db import database_url, private_sqlite_files
from opscaffold.manager.kit.files import private_file

MIGRATIONS = Path(__file__).parent / "migrations"
# Alembic's `context` and `op` proxies are process-global, so two commands in one process must
# not overlap; the database lock in env.py orders separate processes only.
_IN_PROCESS = threading.Lock()


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    url = database_url(settings.database).render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextmanager
def _sqlite_lock(settings: Settings) -> Iterator[None]:
    """SQLite has no advisory locks; a file lock beside the database serialises migrators."""
    if settings.database.driver != "sqlite":
        yield
        return
    assert settings.database.path is not None
    private_sqlite_files(settings.database.path)
    lock = private_file(Path(f"{settings.database.path}.migrate.lock"))
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(settings: Settings, revision: str = "head") -> None:
    with _IN_PROCESS, _sqlite_lock(settings):
        command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    with _IN_PROCESS, _sqlite_lock(settings):
        command.downgrade(alembic_config(settings), revision)


def mysql_ddl(settings: Settings) -> str:
    """The MySQL DDL of every migration (offline mode): the text of scripts/init_db.sql."""
    import io

    cfg = alembic_config(settings)
    cfg.set_main_option("sqlalchemy.url", "mysql+asyncmy://ops@localhost/ops_scaffold")
    buffer = io.StringIO()
    cfg.output_buffer = buffer
    with _IN_PROCESS:
        command.upgrade(cfg, "head", sql=True)
    return buffer.getvalue()
