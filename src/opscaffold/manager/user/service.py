"""Rules for users: uniqueness, the password policy and the last active admin."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.auth import repository as auth_repository
from opscaffold.manager.auth.passwords import PasswordHasher, check_policy, generate_password
from opscaffold.manager.config import PasswordSettings
from opscaffold.manager.db import end_read
from opscaffold.manager.errors import LastAdminProtected, UserAlreadyExists, UserNotFound
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.models import User
from opscaffold.manager.user import repository
from opscaffold.manager.user.names import canonical_username
from opscaffold.manager.user.schemas import UserCreate, UserUpdate

INITIAL_ADMIN = "admin"


async def get(session: AsyncSession, user_id: int) -> User:
    user = await repository.get(session, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def create(
    session: AsyncSession, data: UserCreate, hasher: PasswordHasher, policy: PasswordSettings
) -> User:
    password = data.password.get_secret_value()
    check_policy(password, policy, username=data.username)
    await end_read(session)  # argon2 runs without holding a database connection
    password_hash = await hasher.hash(password)
    # `Admin` beside `admin` would be two accounts that a login cannot tell apart.
    if await repository.taken(session, canonical_username(data.username), data.email):
        raise UserAlreadyExists()
    user = User(
        username=data.username,
        password_hash=password_hash,
        email=data.email,
        phone=data.phone,
        role=data.role,
        status=data.status,
    )
    return await repository.add(session, user)


async def update(
    session: AsyncSession,
    user_id: int,
    data: UserUpdate,
    hasher: PasswordHasher,
    policy: PasswordSettings,
) -> tuple[User, bool]:
    """Apply the given fields. Returns the user and whether their sessions must end."""
    new_hash = None
    if data.password is not None:
        new_hash = await _hash_new_password(session, user_id, data.password, hasher, policy)
    user = await repository.get(session, user_id, for_update=True)
    if user is None:
        raise UserNotFound()
    changes = data.model_dump(exclude_unset=True)
    if changes.get("email") and await repository.taken(
        session, None, changes["email"], exclude_id=user.id
    ):
        raise UserAlreadyExists()
    leaves_admins = ("role" in changes and changes["role"] != "admin") or changes.get("status") == 0
    if leaves_admins and user.role == "admin" and user.status == 1:
        await _keep_an_admin(session, user.id)
    end_sessions = False
    if new_hash is not None:
        user.password_hash = new_hash
        end_sessions = True
    for field in ("email", "phone", "role", "status"):
        if field in changes and changes[field] is not None:
            setattr(user, field, changes[field])
    if changes.get("status") == 0:
        end_sessions = True
    if end_sessions:
        await auth_repository.revoke_user_families(session, user.id, "user_changed", utcnow())
    await session.flush()
    return user, end_sessions


async def _hash_new_password(
    session: AsyncSession,
    user_id: int,
    password: SecretStr,
    hasher: PasswordHasher,
    policy: PasswordSettings,
) -> str:
    """Check the policy and hash, holding no database connection while argon2 runs."""
    user = await repository.get(session, user_id)
    if user is None:
        raise UserNotFound()
    check_policy(password.get_secret_value(), policy, username=user.username)
    await end_read(session)
    return await hasher.hash(password.get_secret_value())


async def delete(session: AsyncSession, user_id: int) -> User:
    user = await repository.get(session, user_id, for_update=True)
    if user is None:
        raise UserNotFound()
    if user.role == "admin" and user.status == 1:
        await _keep_an_admin(session, user.id)
    await repository.delete(session, user)
    return user


async def _keep_an_admin(session: AsyncSession, leaving_id: int) -> None:
    if not [a for a in await repository.lock_active_admins(session) if a != leaving_id]:
        raise LastAdminProtected()


async def ensure_initial_admin(
    session: AsyncSession, hasher: PasswordHasher, password: str | None
) -> str | None:
    """Create `admin` when there is no user at all. Returns the password if it was generated."""
    if await repository.count(session) > 0:
        return None
    generated = None if password else generate_password()
    user = User(
        username=INITIAL_ADMIN,
        password_hash=await hasher.hash(password or generated or ""),
        role="admin",
        status=1,
    )
    await repository.add(session, user)
    return generated


async def set_password(
    session: AsyncSession,
    username: str,
    password: str,
    hasher: PasswordHasher,
    policy: PasswordSettings,
) -> User:
    user = await repository.get_by_username_key(session, canonical_username(username))
    if user is None:
        raise UserNotFound(f"no user named '{username}'")
    check_policy(password, policy, username=username)
    user.password_hash = await hasher.hash(password)
    await auth_repository.revoke_user_families(session, user.id, "password_reset", utcnow())
    await session.flush()
    return user
