"""Logging in, rotating refresh tokens, logging out.

Login answers the same way, in about the same time, for an unknown user and a wrong password;
failures are counted per account and per source address, and past the limit further attempts
are refused until the window ends (whether or not the password would have been right).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.auth import repository
from opscaffold.manager.auth.passwords import PasswordHasher, check_policy
from opscaffold.manager.auth.schemas import TokenPair
from opscaffold.manager.auth.state import AuthStateStore
from opscaffold.manager.auth.tokens import TokenCodec
from opscaffold.manager.config import AuthSettings
from opscaffold.manager.db import end_read
from opscaffold.manager.errors import RateLimited, Unauthenticated, WrongPassword
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.kit.counters import CounterStore
from opscaffold.manager.models import User
from opscaffold.manager.user import repository as user_repository
from opscaffold.manager.user.names import canonical_username

BAD_CREDENTIALS = "invalid username or password"


@dataclass(frozen=True, slots=True)
class AuthTools:
    """What logging in, refreshing and changing a password use of the running Manager."""

    settings: AuthSettings
    hasher: PasswordHasher
    tokens: TokenCodec
    counters: CounterStore
    states: AuthStateStore


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    user: User
    tokens: TokenPair


async def login(
    session: AsyncSession, auth: AuthTools, username: str, password: str, ip: str
) -> LoginOutcome:
    throttle = auth.settings.login_throttle
    window = int(throttle.window.total_seconds())
    # Every spelling that names the account shares its counter (`Victim`, `vìctim`, `victim `).
    name_key = canonical_username(username)
    account_key, ip_key = f"login:user:{name_key}", f"login:ip:{ip}"
    await _refuse_if_throttled(auth, account_key, throttle.max_failures_per_account, window)
    await _refuse_if_throttled(auth, ip_key, throttle.max_failures_per_ip, window)

    found = await user_repository.credentials(session, name_key)
    await end_read(session)  # argon2 runs without holding a database connection
    # Always verify: against a dummy hash when the user is unknown, so timing reveals nothing.
    ok = await auth.hasher.verify(found.password_hash if found else None, password)
    if not ok or found is None or found.status != 1:
        await auth.counters.incr(account_key, window)
        await auth.counters.incr(ip_key, window)
        raise Unauthenticated(BAD_CREDENTIALS)

    await auth.counters.reset(account_key, window)
    rehashed = None
    if auth.hasher.needs_rehash(found.password_hash):
        rehashed = await auth.hasher.hash(password)
    user = await user_repository.get(session, found.id, for_update=True)
    # Deleted, disabled or given another password while the old one was being checked.
    if user is None or user.status != 1 or user.password_hash != found.password_hash:
        raise Unauthenticated(BAD_CREDENTIALS)
    if rehashed is not None:
        user.password_hash = rehashed
    user.last_login_at, user.last_login_ip = utcnow(), ip
    tokens = await _start_session(session, auth, user)
    return LoginOutcome(user, tokens)


async def _refuse_if_throttled(auth: AuthTools, key: str, limit: int, window: int) -> None:
    seen = await auth.counters.peek(key, window)
    if seen.count >= limit:
        raise RateLimited(seen.retry_after, "too many failed logins; try again later")


async def _start_session(session: AsyncSession, auth: AuthTools, user: User) -> TokenPair:
    family_id = str(uuid.uuid4())
    now = utcnow()
    refresh_expiry = now + auth.settings.jwt.refresh_ttl
    await repository.add_family(session, family_id, user.id, refresh_expiry, now)
    return await _issue_pair(session, auth, user, family_id)


async def _issue_pair(
    session: AsyncSession, auth: AuthTools, user: User, family_id: str
) -> TokenPair:
    access, refresh = (
        auth.tokens.issue(
            kind, user_id=user.id, username=user.username, role=user.role, family_id=family_id
        )
        for kind in ("access", "refresh")
    )
    now = utcnow()
    await repository.add_refresh_token(
        session, refresh.claims.jti, family_id, refresh.claims.expires_at, now
    )
    jwt = auth.settings.jwt
    return TokenPair(
        token=access.token,
        refresh_token=refresh.token,
        expires_in=int(jwt.access_ttl.total_seconds()),
        refresh_expires_in=int(jwt.refresh_ttl.total_seconds()),
    )


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    user: User
    tokens: TokenPair | None  # None: the token was replayed and its family is now revoked
    family_id: str


async def refresh(session: AsyncSession, auth: AuthTools, token: str) -> RefreshOutcome:
    """Exchange a refresh token for a new pair; a replayed token revokes its whole family."""
    claims = auth.tokens.decode("refresh", token)
    user = await user_repository.get(session, claims.user_id)
    if user is None or user.status != 1:
        raise Unauthenticated("user no longer exists or is disabled")
    now = utcnow()
    state = await auth.states.load(session, user.id, claims.family_id)
    if state is None or state.session_revoked:
        raise Unauthenticated("session has ended; log in again")
    if not await repository.claim_refresh_token(session, claims.jti, now):
        await repository.revoke_family(session, claims.family_id, "refresh_reuse", now)
        return RefreshOutcome(user, None, claims.family_id)
    return RefreshOutcome(user, await _issue_pair(session, auth, user, claims.family_id), "")


async def logout(session: AsyncSession, family_id: str) -> None:
    await repository.revoke_family(session, family_id, "logout", utcnow())


async def change_own_password(
    session: AsyncSession, auth: AuthTools, user_id: int, current: str, new: str
) -> User:
    """Check the current password, apply the policy, and end every session of the user."""
    found = await user_repository.get(session, user_id)
    if found is None:
        raise Unauthenticated("user no longer exists")
    stored, username = found.password_hash, found.username
    await end_read(session)  # argon2 runs without holding a database connection
    if not await auth.hasher.verify(stored, current):
        raise WrongPassword()
    check_policy(new, auth.settings.password, username=username)
    new_hash = await auth.hasher.hash(new)
    user = await user_repository.get(session, user_id, for_update=True)
    if user is None:
        raise Unauthenticated("user no longer exists")
    if user.password_hash != stored:  # changed meanwhile: `current` is no longer current
        raise WrongPassword()
    user.password_hash = new_hash
    await repository.revoke_user_families(session, user.id, "password_changed", utcnow())
    await session.flush()
    return user
