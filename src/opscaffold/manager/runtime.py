"""Everything a running Manager holds: built in the lifespan, reached through app.state."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from opscaffold.manager import db, secrets
from opscaffold.manager.auth.passwords import PasswordHasher
from opscaffold.manager.auth.service import AuthTools
from opscaffold.manager.auth.state import AuthStateStore
from opscaffold.manager.auth.tokens import TokenCodec
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.config import Settings
from opscaffold.manager.dashboard.cache import DashboardCache
from opscaffold.manager.kit.counters import CounterStore, MemoryCounters, RedisCounters
from opscaffold.manager.observability.metrics import ManagerMetrics
from opscaffold.manager.redis import RedisLink, connect
from opscaffold.manager.task.keys import TaskKey
from opscaffold.manager.task.output_bus import OutputBus
from opscaffold.manager.version.keys import KeyRing
from opscaffold.manager.version.storage import PackageStore


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis_link: RedisLink | None
    counters: CounterStore
    hasher: PasswordHasher
    tokens: TokenCodec
    auth_states: AuthStateStore
    metrics: ManagerMetrics
    command_bus: CommandBus
    keys: KeyRing
    packages: PackageStore
    dashboard: DashboardCache
    task_key: TaskKey
    output_bus: OutputBus

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = db.create_engine(settings.database)
        link = RedisLink(connect(settings.redis)) if settings.redis.enabled else None
        bus = CommandBus(link)
        packages = PackageStore.of(settings.storage)
        packages.prepare()
        sessions = db.session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            redis_link=link,
            counters=RedisCounters(link) if link is not None else MemoryCounters(),
            hasher=PasswordHasher(settings.auth.password),
            tokens=token_codec(settings),
            auth_states=AuthStateStore(link),
            metrics=ManagerMetrics(),
            command_bus=bus,
            keys=KeyRing.load(settings),
            packages=packages,
            dashboard=DashboardCache(sessions, settings.dashboard.max_age),
            task_key=TaskKey.load(settings),
            output_bus=OutputBus(link),
        )

    @property
    def auth(self) -> AuthTools:
        return AuthTools(
            self.settings.auth, self.hasher, self.tokens, self.counters, self.auth_states
        )

    @property
    def redis(self) -> Redis | None:
        """The Redis client, when configured (whether or not it answers right now)."""
        return self.redis_link.client if self.redis_link is not None else None

    async def close(self) -> None:
        self.hasher.close()
        await self.output_bus.stop()
        if self.redis_link is not None:
            await self.redis_link.close()
        await self.engine.dispose()


def token_codec(settings: Settings) -> TokenCodec:
    """Configured JWT secrets, or (development only) ones generated and kept under data_dir."""
    jwt = settings.auth.jwt
    access = jwt.access_secret.get_secret_value() or secrets.load_or_create(
        settings.data_dir, "jwt_access_secret"
    )
    refresh = jwt.refresh_secret.get_secret_value() or secrets.load_or_create(
        settings.data_dir, "jwt_refresh_secret"
    )
    return TokenCodec(jwt, access, refresh)
