"""Who is behind an access token right now: user status, role and session revocation.

Checked on every request so that logout, disabling or deleting a user and changing a role take
effect on the next request. The database is the truth; with Redis configured, the answer is
cached there for a short time, so every replica sees one state and revocations are written
through to the cache before and after the commit that makes them.

While Redis does not answer, every load reads the database, and nothing read then is cached.
A revocation made during an outage could not reach the cache, so when Redis answers again the
whole cache is dropped before it is read again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.auth import repository
from opscaffold.manager.redis import REDIS_ERRORS, RedisLink

USER_ACTIVE = 1
CACHE_TTL_S = 60
KEY_PREFIX = "ops:auth:"


@dataclass(frozen=True, slots=True)
class AuthState:
    user_id: int
    username: str
    role: str
    active: bool
    session_revoked: bool


class AuthStateStore:
    def __init__(self, link: RedisLink | None) -> None:
        self._link = link
        if link is not None:
            link.on_recovery(_drop_all)

    async def load(self, session: AsyncSession, user_id: int, family_id: str) -> AuthState | None:
        link = self._link
        if link is None or not link.usable:
            return await self._load_from_db(session, user_id, family_id)
        epoch, key = link.epoch, self._key(user_id, family_id)
        try:
            cached = await link.client.get(key)
        except REDIS_ERRORS as error:
            link.failed(error)
            return await self._load_from_db(session, user_id, family_id)
        if cached is not None:
            return None if cached == b"-" else AuthState(**json.loads(cached))
        state = await self._load_from_db(session, user_id, family_id)
        # Read from the database across an outage: a revocation may have missed the cache.
        if link.usable and link.epoch == epoch:
            value = "-" if state is None else json.dumps(asdict(state))
            try:
                await link.client.set(key, value, ex=CACHE_TTL_S)
            except REDIS_ERRORS as error:
                link.failed(error)
        return state

    async def forget_user(self, user_id: int) -> None:
        """Drop every cached state of a user (called before and after the change commits)."""
        await self._forget(lambda redis: _drop_matching(redis, f"{KEY_PREFIX}{user_id}:*"))

    async def forget_session(self, user_id: int, family_id: str) -> None:
        await self._forget(lambda redis: redis.delete(self._key(user_id, family_id)))

    async def _forget(self, drop: Callable[[Redis], Awaitable[object]]) -> None:
        # Unreachable, the cache is dropped whole once Redis answers again.
        if self._link is None or not self._link.usable:
            return
        try:
            await drop(self._link.client)
        except REDIS_ERRORS as error:
            self._link.failed(error)

    @staticmethod
    def _key(user_id: int, family_id: str) -> str:
        return f"{KEY_PREFIX}{user_id}:{family_id}"

    @staticmethod
    async def _load_from_db(
        session: AsyncSession, user_id: int, family_id: str
    ) -> AuthState | None:
        row = await repository.auth_state_row(session, user_id, family_id)
        if row is None:
            return None
        username, role, status, known_family, revoked_at = row
        return AuthState(
            user_id=user_id,
            username=username,
            role=role,
            active=status == USER_ACTIVE,
            session_revoked=known_family is None or revoked_at is not None,
        )


async def _drop_matching(redis: Redis, pattern: str) -> None:
    keys = [k async for k in redis.scan_iter(match=pattern, count=500)]
    for start in range(0, len(keys), 500):
        await redis.delete(*keys[start : start + 500])


async def _drop_all(redis: Redis) -> None:
    await _drop_matching(redis, f"{KEY_PREFIX}*")
