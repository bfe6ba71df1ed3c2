"""Enrollment tokens: what a new daemon presents at Register to receive its own node token.

Only SHA-256 digests are stored. Node tokens are long random secrets, so a fast hash is the
right tool (argon2 is for passwords people choose).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.enrollment import repository
from opscaffold.manager.enrollment.schemas import EnrollmentTokenCreate
from opscaffold.manager.errors import InvalidArgument, NotFound
from opscaffold.manager.ingest import repository as ingest_repository
from opscaffold.manager.kit.clock import as_utc, utcnow
from opscaffold.manager.models import EnrollmentToken
from opscaffold.manager.node import repository as node_repository

# Prefixes make a leaked secret recognisable (and scannable) for what it is.
TOKEN_PREFIX = "ose_"  # noqa: S105 - enrollment token prefix, not a secret
NODE_TOKEN_PREFIX = "osn_"  # noqa: S105 - node token prefix, not a secret
MIN_TOKEN_LENGTH = 24


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Created:
    row: EnrollmentToken
    token: str


async def create(
    session: AsyncSession,
    data: EnrollmentTokenCreate,
    created_by: int | None,
    *,
    token: str | None = None,
) -> Created:
    expires = as_utc(data.expires_at) if data.expires_at else None
    if expires is not None and expires <= utcnow():
        raise InvalidArgument("expires_at is in the past")
    secret = token or new_secret(TOKEN_PREFIX)
    if len(secret) < MIN_TOKEN_LENGTH:
        raise InvalidArgument(f"an enrollment token needs at least {MIN_TOKEN_LENGTH} characters")
    row = EnrollmentToken(
        name=data.name,
        token_hash=digest(secret),
        token_prefix=secret[:8],
        expires_at=expires,
        max_uses=data.max_uses,
        uses=0,
        created_by=created_by,
        created_at=utcnow(),
    )
    return Created(await repository.add(session, row), secret)


async def revoke(session: AsyncSession, token_id: int) -> EnrollmentToken:
    row = await repository.get(session, token_id)
    if row is None:
        raise NotFound("enrollment token not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row


async def ensure_initial(session: AsyncSession, configured: str | None, generated: str) -> bool:
    """At start: make sure the configured token exists, or (first start only) the generated one.

    Returns True when a token was created. A deleted or revoked default is not brought back.
    """
    if configured:
        if await repository.by_hash(session, digest(configured)) is not None:
            return False
        await create(
            session, EnrollmentTokenCreate(name="from OPS_ENROLLMENT_TOKEN"), None, token=configured
        )
        return True
    if await repository.count(session) > 0:
        return False
    await create(session, EnrollmentTokenCreate(name="default"), None, token=generated)
    return True


async def usable(session: AsyncSession, token: str, now: datetime) -> int | None:
    """The id of an enrollment token that may enroll a node now, or None."""
    row = await repository.by_hash(session, digest(token))
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.max_uses is not None and row.uses >= row.max_uses:
        return None
    return row.id


async def redeem(session: AsyncSession, token_id: int, now: datetime) -> bool:
    """Count one use, atomically; False when the token was used up or revoked meanwhile.

    Called last in the registering transaction: every enrollment updates this one row, so
    its lock is held only from here to the commit.
    """
    return await repository.use(session, token_id, now)


# A node that never used its token this long after enrolling may enroll again: the answer
# carrying its token was lost (a timeout), and without it the daemon is locked out.
LOST_ANSWER_WINDOW = timedelta(minutes=10)


async def answer_lost(session: AsyncSession, node_id: int) -> bool:
    """True when a node enrolled recently and has never been heard from with its token."""
    node = await repository.node_activity(session, node_id)
    if node is None:
        return False
    created_at, last_heartbeat, has_reports = node
    return last_heartbeat is None and not has_reports and created_at > utcnow() - LOST_ANSWER_WINDOW


@dataclass(frozen=True, slots=True)
class Registration:
    node_id: int
    created: bool
    node_token: str  # empty unless a new token was issued


async def register(
    session: AsyncSession,
    *,
    known_node_id: int | None,
    values: dict[str, object],
    labels: dict[str, str],
    issue_token: bool,
) -> Registration:
    """Create the node (first registration) or refresh what it reports about itself.

    The caller has already established who may register this uuid; the node's group, tags and
    operator-set labels are never touched by a daemon.
    """
    now = utcnow()
    if known_node_id is not None:
        current = await repository.node_values(session, known_node_id, list(values))
        changed = {k: v for k, v in values.items() if current.get(k) != v}
        if changed:  # a daemon re-registering unchanged writes nothing (no write lock taken)
            await repository.update_node(session, known_node_id, {**changed, "updated_at": now})
        token = await _issue_token(session, known_node_id, now) if issue_token else ""
        return Registration(known_node_id, False, token)
    node_id = await repository.insert_node(
        session,
        {**values, "labels": labels, "status": "unknown", "created_at": now, "updated_at": now},
    )
    await node_repository.replace_labels(session, node_id, labels)
    await ingest_repository.add_events(session, [node_id], "registered", {}, now)
    token = await _issue_token(session, node_id, now) if issue_token else ""
    return Registration(node_id, True, token)


async def _issue_token(session: AsyncSession, node_id: int, now: datetime) -> str:
    """A new node token; it replaces any earlier one of the node."""
    token = new_secret(NODE_TOKEN_PREFIX)
    await repository.set_credential(session, node_id, digest(token), now)
    return token
