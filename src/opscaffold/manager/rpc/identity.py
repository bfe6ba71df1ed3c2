"""Who is calling: node identity checked at the edge of every gRPC call.

Token mode: metadata `authorization: Bearer <token>` — an enrollment token (Register only) or
the node's own token, looked up by its SHA-256. mTLS mode: the client certificate, verified
against our CA by the TLS layer, names the node uuid in its Common Name or a `urn:uuid:` SAN;
grpc.aio interceptors do not see the peer certificate, so this reads the call context.

Lookups are cached for a couple of seconds: a deleted node's token stops working everywhere
within that time, and a daemon hammering us costs one query per window, not one per call.
"""

from __future__ import annotations

import time
import uuid as uuid_lib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.enrollment import repository
from opscaffold.manager.enrollment.service import digest
from opscaffold.manager.errors import NodeCredentialRefused, NodeForbidden

CACHE_SECONDS = 2.0
CACHE_MAX = 200_000
Mode = Literal["token", "mtls"]


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: int
    uuid: str


@dataclass(frozen=True, slots=True)
class Caller:
    """What a Register call presents before a node may exist."""

    bearer: str | None
    cert_uuid: str | None
    peer_ip: str


def peer_ip(context: Any) -> str:
    peer = str(context.peer() or "")  # "ipv4:10.0.0.5:51234" or "ipv6:[::1]:51234"
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rpartition("]")[0].lstrip("[")[:45]
    if kind == "ipv4":
        return rest.rpartition(":")[0][:45]
    return peer[:45] or "unknown"


def bearer_of(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def cert_uuid_of(context: Any) -> str | None:
    """The node uuid a verified client certificate names (CN, or a urn:uuid: SAN)."""
    auth: dict[str, list[bytes]] = context.auth_context() or {}
    sans = [v.decode() for v in auth.get("x509_subject_alternative_name", [])]
    candidates = [c.removeprefix("urn:uuid:") for c in sans if c.startswith("urn:uuid:")]
    candidates += [v.decode() for v in auth.get("x509_common_name", [])]
    return next((c.lower() for c in candidates if valid_uuid(c)), None)


def valid_uuid(value: str) -> bool:
    try:
        uuid_lib.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


class IdentityResolver:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], mode: Mode) -> None:
        self.mode = mode
        self._sessions = sessions
        self._cache: dict[str, tuple[float, NodeIdentity | None]] = {}

    def caller(self, context: Any) -> Caller:
        cert = cert_uuid_of(context) if self.mode == "mtls" else None
        return Caller(bearer_of(context), cert, peer_ip(context))

    async def of_call(self, context: Any) -> NodeIdentity:
        """The node behind a call; UNAUTHENTICATED when there is none."""
        caller = self.caller(context)
        if self.mode == "mtls":
            if caller.cert_uuid is None:
                raise NodeCredentialRefused("no node certificate", "no_cert")
            found = await self._cached("uuid:" + caller.cert_uuid, caller.cert_uuid, by_uuid=True)
            if found is None:
                raise NodeCredentialRefused("node is not registered", "unknown_node")
            return found
        if caller.bearer is None:
            raise NodeCredentialRefused("missing bearer token", "no_token")
        found = await self.by_node_token(caller.bearer)
        if found is None:
            raise NodeCredentialRefused("invalid or revoked node token", "bad_token")
        return found

    async def by_node_token(self, token: str) -> NodeIdentity | None:
        token_hash = digest(token)
        return await self._cached("tok:" + token_hash, token_hash, by_uuid=False)

    async def by_uuid(self, node_uuid: str) -> NodeIdentity | None:
        return await self._cached("uuid:" + node_uuid, node_uuid, by_uuid=True)

    def forget(self) -> None:
        self._cache.clear()

    def remember(self, identity: NodeIdentity, token_hash: str | None) -> None:
        """Note a node that has just registered (and the digest of the token it holds now),
        so that the calls its daemon makes next need no look-up: in a registration storm
        that saves a query per node."""
        self._store("uuid:" + identity.uuid, identity)
        if token_hash is not None:
            self._store("tok:" + token_hash, identity)

    def forget_nodes(self, node_ids: Collection[int]) -> None:
        """Drop what is cached for these nodes: one enrolled again holds a new token, and the
        old one must stop working at once, not when its entry expires."""
        stale = [k for k, (_, found) in self._cache.items() if found and found.node_id in node_ids]
        for key in stale:
            del self._cache[key]

    async def _cached(self, key: str, value: str, *, by_uuid: bool) -> NodeIdentity | None:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._sessions() as session:
            row = await (
                repository.node_by_uuid(session, value)
                if by_uuid
                else repository.node_by_credential(session, value)
            )
        found = None if row is None else NodeIdentity(*row)
        self._store(key, found)
        return found

    def _store(self, key: str, found: NodeIdentity | None) -> None:
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + CACHE_SECONDS, found)


def check_names_self(identity: NodeIdentity, node_uuid: str) -> None:
    """A request naming another node is refused (an empty uuid means the caller itself)."""
    if node_uuid and node_uuid.lower() != identity.uuid:
        raise NodeForbidden("this credential belongs to another node", "other_node")
