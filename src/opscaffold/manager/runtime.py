"""Everything a running Manager holds: built in the lifespan, reached through app.state."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from opscaffold.manager import db, secrets
from opscaffold.manager.auth.passwords import PasswordHasher
from opscaffold.manager.auth.state import AuthStateStore
from opscaffold.manager.auth.tokens import TokenCodec
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.config import Settings
from opscaffold.manager.kit.counters import CounterStore, MemoryCounters, RedisCounters
from opscaffold.manager.observability.metrics import ManagerMetrics

REDIS_POOL_WAIT_S = 5.0


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis | None
    counters: CounterStore
    hasher: PasswordHasher
    tokens: TokenCodec
    auth_states: AuthStateStore
    metrics: ManagerMetrics
    command_bus: CommandBus

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = db.create_engine(settings.database)
        redis = connect_redis(settings) if settings.redis.enabled else None
        bus = CommandBus(redis)
        return cls(
            settings=settings,
            engine=engine,
            # Services reach the bus through their session to wake streams after commit.
            sessions=db.session_factory(engine, info={"command_bus": bus}),
            redis=redis,
            counters=RedisCounters(redis) if redis is not None else MemoryCounters(),
            hasher=PasswordHasher(settings.auth.password),
            tokens=token_codec(settings),
            auth_states=AuthStateStore(redis),
            metrics=ManagerMetrics(),
            command_bus=bus,
        )

    async def close(self) -> None:
        self.hasher.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def connect_redis(settings: Settings) -> Redis:
    cfg = settings.redis
    # Blocking: when every connection is busy (thousands of streams opening after a restart),
    # a caller waits for one instead of failing at once.
    pool = BlockingConnectionPool(
        host=cfg.host,
        port=cfg.port,
        db=cfg.db,
        password=cfg.password.get_secret_value() or None,
        max_connections=cfg.pool_size,
        timeout=REDIS_POOL_WAIT_S,
        socket_timeout=5,
        socket_connect_timeout=5,
    )
    return Redis.from_pool(pool)


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
