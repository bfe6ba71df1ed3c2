"""Enrollment tokens: what a new daemon presents at Register to receive its own node token.

Only SHA-256 digests are stored. Node tokens are long random secrets, so a fast hash is the
right tool (argon2 is for passwords people choose).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.enrollment import repository
from opscaffold.manager.enrollment.schemas import EnrollmentTokenCreate
from opscaffold.manager.errors import (
    DomainError,
    InvalidArgument,
    NodeCredentialRefused,
    NodeForbidden,
    NotFound,
)
from opscaffold.manager.kit.clock import as_utc, utcnow
from opscaffold.manager.models import EnrollmentToken
from opscaffold.manager.node import service as node_service

# Prefixes make a leaked secret recognisable (and scannable) for what it is.
TOKEN_PREFIX = "ose_"  # noqa: S105 - enrollment token prefix, not a secret
NODE_TOKEN_PREFIX = "osn_"  # noqa: S105 - node token prefix, not a secret
MIN_TOKEN_LENGTH = 24
BAD_ENROLLMENT = "invalid, expired or used-up enrollment token"


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


# A node that never used its token this long after enrolling may enroll again: the answer
# carrying its token was lost (a timeout), and without it the daemon is locked out.
LOST_ANSWER_WINDOW = timedelta(minutes=10)


class EnrollmentRaced(Exception):
    """An enrollment token changed (used, revoked) between the look-up and its redemption:
    the decisions made on the look-up no longer hold, so the whole batch is rolled back."""


@dataclass(frozen=True, slots=True)
class KnownNode:
    node_id: int
    current: dict[str, object]  # what the node reported last, as stored
    answer_lost: bool  # enrolled recently and never heard from with its token
    enrollment_key_hash: str | None  # of the daemon that enrolled it, if it sent a key


@dataclass(frozen=True, slots=True)
class UsableToken:
    """An enrollment token that may enroll nodes now."""

    id: int
    uses_left: int | None  # None: unlimited


@dataclass(frozen=True, slots=True)
class Found:
    """What a batch of registrations is decided on."""

    nodes: dict[str, KnownNode]  # by uuid
    node_tokens: dict[str, tuple[int, str]]  # token digest → (node id, uuid)
    enrollment_tokens: dict[str, UsableToken]  # token digest → token


async def look_up(
    session: AsyncSession,
    uuids: Sequence[str],
    token_hashes: Sequence[str],
    columns: Sequence[str],
    now: datetime,
) -> Found:
    """The nodes named, and what each presented token is, in at most three queries."""
    stored = await repository.nodes_by_uuids(session, uuids, columns)
    nodes = {
        node_uuid: KnownNode(
            node.node_id, node.current, _answer_lost(node, now), node.enrollment_key_hash
        )
        for node_uuid, node in stored.items()
    }
    hashes = list(dict.fromkeys(token_hashes))
    node_tokens = await repository.nodes_by_credentials(session, hashes)
    rows = await repository.by_hashes(session, [h for h in hashes if h not in node_tokens])
    enrollment_tokens = {
        row.token_hash: UsableToken(row.id, _uses_left(row)) for row in rows if _usable(row, now)
    }
    return Found(nodes, node_tokens, enrollment_tokens)


def _usable(row: EnrollmentToken, now: datetime) -> bool:
    if row.revoked_at is not None:
        return False
    if row.expires_at is not None and row.expires_at <= now:
        return False
    return row.max_uses is None or row.uses < row.max_uses


def _uses_left(row: EnrollmentToken) -> int | None:
    return None if row.max_uses is None else row.max_uses - row.uses


def _answer_lost(node: repository.StoredNode, now: datetime) -> bool:
    return (
        node.last_heartbeat is None
        and not node.has_reports
        and node.created_at > now - LOST_ANSWER_WINDOW
    )


@dataclass(frozen=True, slots=True)
class Admission:
    """One registration the caller was found entitled to."""

    values: dict[str, object]  # the columns the daemon reports about itself
    labels: dict[str, str]
    known: KnownNode | None  # None: a new node
    enrollment_token_id: int | None  # the token it enrolls with; None: registering as itself
    issue_token: bool  # a new node, or one whose first answer was lost: it needs a (new) token


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """One Register call, as the edge decoded it."""

    values: dict[str, Any]  # the columns the daemon reports about itself, uuid among them
    labels: dict[str, str]
    token_hash: str | None  # digest of the bearer token (token mode)
    cert_uuid: str | None  # the node its verified certificate names (mTLS mode)
    enrollment_key_hash: str | None  # digest of the daemon's enrollment key

    @property
    def uuid(self) -> str:
        return str(self.values["uuid"])


def admit(
    requests: Sequence[RegisterRequest], found: Found, *, mtls: bool
) -> list[Admission | DomainError]:
    """Decide each request of a batch on what `look_up` found, in order, as if they had come
    one after another: an Admission, or the refusal for that caller alone. The batch holds
    no uuid twice. An enrollment token's uses count down as earlier requests take them."""
    uses_left = {t.id: t.uses_left for t in found.enrollment_tokens.values()}
    decisions: list[Admission | DomainError] = []
    for request in requests:
        try:
            decisions.append(_admit(request, found, uses_left, mtls=mtls))
        except (NodeCredentialRefused, NodeForbidden) as refused:
            decisions.append(refused)
    return decisions


def _admit(
    request: RegisterRequest, found: Found, uses_left: dict[int, int | None], *, mtls: bool
) -> Admission:
    """The caller may refresh its own node, or enroll with an enrollment token that has a
    use left: a new node, or one whose first answer was lost if the caller holds the key
    that node enrolled with (the uuid alone is no secret: viewers see it). Everyone else
    is refused."""
    existing = found.nodes.get(request.uuid)
    if mtls:
        _check_certificate(request)
        return Admission(request.values, request.labels, existing, None, issue_token=False)
    if request.token_hash is None:
        raise NodeCredentialRefused("missing bearer token", "no_token")
    own = found.node_tokens.get(request.token_hash)
    if own is not None:
        if request.uuid.lower() != own[1]:  # its own node token, naming another node
            raise NodeForbidden("this credential belongs to another node", "other_node")
        return Admission(request.values, request.labels, existing, None, issue_token=False)
    token = found.enrollment_tokens.get(request.token_hash)
    if token is not None and uses_left[token.id] == 0:  # taken by earlier requests
        token = None
    if existing is not None and not (token is not None and _lost_answer_of(request, existing)):
        message = "this node is already enrolled: register with its node token"
        raise NodeForbidden(message, "uuid_taken")
    if token is None:
        raise NodeCredentialRefused(BAD_ENROLLMENT, "bad_enrollment")
    left = uses_left[token.id]
    uses_left[token.id] = None if left is None else left - 1
    values = request.values
    if existing is None:
        values = values | {"enrollment_key_hash": request.enrollment_key_hash}
    return Admission(values, request.labels, existing, token.id, issue_token=True)


def _lost_answer_of(request: RegisterRequest, node: KnownNode) -> bool:
    """The node has not been heard from since it enrolled, and the caller is the daemon that
    enrolled it: it never got the answer carrying its token."""
    held = node.enrollment_key_hash
    offered = request.enrollment_key_hash
    return (
        node.answer_lost
        and held is not None
        and offered is not None
        and hmac.compare_digest(held, offered)
    )


def _check_certificate(request: RegisterRequest) -> None:
    if request.cert_uuid is None:
        raise NodeCredentialRefused("no node certificate", "no_cert")
    if request.cert_uuid != request.uuid:
        raise NodeForbidden("the certificate names another node", "other_node")


@dataclass(frozen=True, slots=True)
class Registration:
    node_id: int
    created: bool
    node_token: str  # empty unless a new token was issued


async def register(
    session: AsyncSession, admissions: Sequence[Admission], now: datetime
) -> list[Registration]:
    """Create the new nodes and refresh what known ones report about themselves, for a whole
    batch in a fixed number of statements; answers in the order of `admissions`.

    The caller has already established who may register each uuid (no uuid twice); the
    node's group, tags and operator-set labels are never touched by a daemon. Tokens are
    redeemed last, so their rows stay locked only until the commit; raises EnrollmentRaced
    when one no longer has the uses the decisions counted on.
    """
    await _refresh(session, [a for a in admissions if a.known is not None], now)
    created = await _create(session, [a for a in admissions if a.known is None], now)
    node_ids = [
        a.known.node_id if a.known is not None else created[str(a.values["uuid"])]
        for a in admissions
    ]
    issued = {
        node_id: new_secret(NODE_TOKEN_PREFIX)
        for node_id, a in zip(node_ids, admissions, strict=True)
        if a.issue_token
    }
    replaced = [a.known.node_id for a in admissions if a.issue_token and a.known is not None]
    await repository.replace_credentials(
        session, {node_id: digest(token) for node_id, token in issued.items()}, replaced, now
    )
    await _redeem(session, [a.enrollment_token_id for a in admissions], now)
    return [
        Registration(node_id, a.known is None, issued.get(node_id, ""))
        for node_id, a in zip(node_ids, admissions, strict=True)
    ]


async def _refresh(session: AsyncSession, known: Sequence[Admission], now: datetime) -> None:
    """Write only what changed: a daemon re-registering unchanged takes no write lock."""
    changes: dict[int, dict[str, object]] = {}
    for admission in known:
        assert admission.known is not None
        current = admission.known.current
        changed = {k: v for k, v in admission.values.items() if current.get(k) != v}
        if changed:
            changes[admission.known.node_id] = changed
    await node_service.update_reported(session, changes, now)


async def _create(session: AsyncSession, new: Sequence[Admission], now: datetime) -> dict[str, int]:
    """Create the new nodes; uuid → node id."""
    return await node_service.create_reported(session, [(a.values, a.labels) for a in new], now)


async def _redeem(session: AsyncSession, token_ids: Sequence[int | None], now: datetime) -> None:
    """One atomic update per token, counting all of its uses in the batch at once."""
    for token_id, uses in sorted(Counter(t for t in token_ids if t is not None).items()):
        if not await repository.use(session, token_id, uses, now):
            raise EnrollmentRaced(f"enrollment token {token_id} changed meanwhile")
