"""Who is behind an access token right now: user status, role and session revocation.

Checked on every request so that logout, disabling or deleting a user and changing a role take
effect on the next request. The database is the truth; with Redis configured, the answer is
cached there for a short time, so every replica sees one state and revocations are written
through to the cache before and after the commit that makes them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.auth import repository

USER_ACTIVE = 1
CACHE_TTL_S = 60


@dataclass(frozen=True, slots=True)
class AuthState:
    user_id: int
    username: str
    role: str
    active: bool
    session_revoked: bool


class AuthStateStore:
    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis

    async def load(self, session: AsyncSession, user_id: int, family_id: str) -> AuthState | None:
        if self._redis is not None:
            cached = await self._redis.get(self._key(user_id, family_id))
            if cached is not None:
                return None if cached == b"-" else AuthState(**json.loads(cached))
        state = await self._load_from_db(session, user_id, family_id)
        if self._redis is not None:
            value = "-" if state is None else json.dumps(asdict(state))
            await self._redis.set(self._key(user_id, family_id), value, ex=CACHE_TTL_S)
        return state

    async def forget_user(self, user_id: int) -> None:
        """Drop every cached state of a user (called before and after the change commits)."""
        if self._redis is None:
            return
        keys = [k async for k in self._redis.scan_iter(match=f"ops:auth:{user_id}:*", count=500)]
        if keys:
            await self._redis.delete(*keys)

    async def forget_session(self, user_id: int, family_id: str) -> None:
        if self._redis is not None:
            await self._redis.delete(self._key(user_id, family_id))

    @staticmethod
    def _key(user_id: int, family_id: str) -> str:
        return f"ops:auth:{user_id}:{family_id}"

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
