"""Register in batches: one transaction for all the registrations of a ~50 ms window.

When a fleet starts at once, a transaction of ~10 statements per Register made the database
the limit at a few dozen registrations a second. Here, as reports do with the ingest flusher,
the handler validates, queues and waits: a batch is looked up, decided and written with a fixed
number of set-based statements, and each caller is answered once its batch is committed.

Every decision (who may register a uuid, which enrollments get a token's last uses) is made
per request, in arrival order, on what the batch looked up, as if the requests had come one
after another; a refusal goes to its caller alone and never fails the batch. Two requests for
one uuid never share a round: the later one is decided on what the earlier one wrote.

A round that fails on the database (a deadlock, another replica inserting the same uuid, a
token used up meanwhile) is rolled back and tried once more on fresh look-ups, which settles
such races. If that fails too, the round is split and its halves written apart, down to the
request the database refuses, which alone is refused; when the database itself is in trouble
(unreachable, overloaded) the callers are told UNAVAILABLE and back off instead: trying longer
would hold up every queued caller behind it.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.db import transaction
from opscaffold.manager.enrollment import service as enrollment_service
from opscaffold.manager.enrollment.service import (
    Admission,
    EnrollmentRaced,
    Found,
    KnownNode,
    Registration,
    digest,
)
from opscaffold.manager.errors import (
    DatabaseError,
    DomainError,
    IngestBusy,
    InternalError,
    InvalidArgument,
    NodeNotFound,
)
from opscaffold.manager.kit.batching import GroupCommit, isolate
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.logging import get_logger
from opscaffold.manager.rpc.identity import (
    Caller,
    IdentityResolver,
    NodeIdentity,
    Refused,
    check_names_self,
)

log = get_logger("opscaffold.rpc.registrar")
MAX_BATCH = 256
MAX_DELAY = 0.05
# About four batches. A queued call is then answered within a second or two, well inside a
# daemon's 10 s deadline; beyond it callers are turned away at once (RESOURCE_EXHAUSTED) and
# back off. A longer queue would let calls pass their deadlines and come back together: a
# storm feeding itself.
MAX_QUEUE = 1024
BAD_ENROLLMENT = "invalid, expired or used-up enrollment token"
RETRYABLE = (sqlalchemy.exc.DBAPIError, EnrollmentRaced)
EffectiveConfigs = Callable[[AsyncSession, Sequence[int]], Awaitable[dict[int, dict[str, str]]]]


@dataclass(frozen=True, slots=True)
class Registered:
    node_id: int
    created: bool
    node_token: str  # empty unless a new one was issued
    config: dict[str, str]  # the node's effective configuration


def _future() -> asyncio.Future[Registered]:
    return asyncio.get_running_loop().create_future()


@dataclass(slots=True)
class Pending:
    """A validated registration waiting for its batch."""

    caller: Caller
    token_hash: str | None  # digest of the bearer token (token mode)
    values: dict[str, Any]
    labels: dict[str, str]
    enrollment_key_hash: str | None = None  # digest of the daemon's enrollment key
    done: asyncio.Future[Registered] = field(default_factory=_future)

    @property
    def uuid(self) -> str:
        return str(self.values["uuid"])


Outcome = Registration | Refused


class Registrar:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        identities: IdentityResolver,
        effective_configs: EffectiveConfigs,
        *,
        max_batch: int = MAX_BATCH,
        max_delay: float = MAX_DELAY,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self._sessions = sessions
        self._identities = identities
        self._effective_configs = effective_configs
        self._batches: GroupCommit[Pending] = GroupCommit(
            self._handle,
            name="registrar",
            max_batch=max_batch,
            max_delay=max_delay,
            max_queue=max_queue,
        )

    def start(self) -> None:
        self._batches.start()

    async def stop(self) -> None:
        """Turn new registrations away, register everything queued, then stop."""
        await self._batches.stop()

    def submit(
        self,
        caller: Caller,
        values: dict[str, Any],
        labels: dict[str, str],
        enrollment_key_hash: str | None = None,
    ) -> asyncio.Future[Registered]:
        """Queue a validated registration; the future resolves once the batch holding it is
        committed, or fails with Refused (this caller only) or a DomainError. Raises
        IngestBusy when the queue is full."""
        token_mode = self._identities.mode == "token"
        token_hash = digest(caller.bearer) if token_mode and caller.bearer else None
        pending = Pending(caller, token_hash, values, labels, enrollment_key_hash)
        if not self._batches.offer(pending):
            raise IngestBusy("too many registrations at once; retry later")
        return pending.done

    async def _handle(self, batch: list[Pending]) -> None:
        waiting = [p for p in batch if not p.done.done()]  # a caller past its deadline has gone
        for round_ in rounds(waiting):
            await self._settle(round_)

    async def _settle(self, requests: list[Pending]) -> None:
        """Decide and write one round, then answer each of its callers; a round the database
        refuses is split until the request it cannot store is alone."""
        await isolate(requests, self._settle_together, _fail)

    async def _settle_together(self, requests: list[Pending]) -> None:
        outcomes = await self._write(requests)  # a failure here splits the round
        try:
            configs = await self._configs(outcomes)
        except Exception as error:  # written already: splitting would write it again
            _fail(requests, error, False)
            return
        self._note_identities(requests, outcomes)
        for pending, outcome in zip(requests, outcomes, strict=True):
            if pending.done.done():
                continue
            if isinstance(outcome, Refused):
                pending.done.set_exception(outcome)
            elif outcome.node_id not in configs:  # deleted right after it registered
                pending.done.set_exception(NodeNotFound())
            else:
                config = configs[outcome.node_id]
                registered = Registered(
                    outcome.node_id, outcome.created, outcome.node_token, config
                )
                pending.done.set_result(registered)

    async def _write(self, requests: list[Pending]) -> list[Outcome]:
        try:
            return await self._attempt(requests)
        except RETRYABLE as error:
            log.warning("registration batch rolled back; retrying", error=type(error).__name__)
        return await self._attempt(requests)

    async def _attempt(self, requests: list[Pending]) -> list[Outcome]:
        now = utcnow()
        token_hashes = [p.token_hash for p in requests if p.token_hash is not None]
        columns = list(dict.fromkeys(column for p in requests for column in p.values))
        async with transaction(self._sessions) as session:
            found = await enrollment_service.look_up(
                session, [p.uuid for p in requests], token_hashes, columns, now
            )
            decisions = self._decide(requests, found)
            admitted = [d for d in decisions if isinstance(d, Admission)]
            registered = iter(await enrollment_service.register(session, admitted, now))
        return [d if isinstance(d, Refused) else next(registered) for d in decisions]

    async def _configs(self, outcomes: list[Outcome]) -> dict[int, dict[str, str]]:
        """Read after the commit, so the batch's write locks are not held for it."""
        node_ids = [o.node_id for o in outcomes if isinstance(o, Registration)]
        if not node_ids:
            return {}
        async with self._sessions() as session:
            return await self._effective_configs(session, node_ids)

    def _decide(self, requests: list[Pending], found: Found) -> list[Admission | Refused]:
        uses_left = {t.id: t.uses_left for t in found.enrollment_tokens.values()}
        decisions: list[Admission | Refused] = []
        for pending in requests:
            try:
                decisions.append(self._admit(pending, found, uses_left))
            except Refused as refused:
                decisions.append(refused)
        return decisions

    def _admit(self, pending: Pending, found: Found, uses_left: dict[int, int | None]) -> Admission:
        """The caller may refresh its own node, or enroll with an enrollment token that has a
        use left: a new node, or one whose first answer was lost if the caller holds the key
        that node enrolled with (the uuid alone is no secret: viewers see it). Everyone else
        is refused. `uses_left` counts down as earlier requests of the batch take uses."""
        existing = found.nodes.get(pending.uuid)
        if self._identities.mode == "mtls":
            _check_certificate(pending)
            return Admission(pending.values, pending.labels, existing, None, issue_token=False)
        if pending.token_hash is None:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token", "no_token")
        own = found.node_tokens.get(pending.token_hash)
        if own is not None:
            check_names_self(NodeIdentity(*own), pending.uuid)
            return Admission(pending.values, pending.labels, existing, None, issue_token=False)
        token = found.enrollment_tokens.get(pending.token_hash)
        if token is not None and uses_left[token.id] == 0:  # taken by earlier requests
            token = None
        if existing is not None and not (token is not None and _lost_answer_of(pending, existing)):
            message = "this node is already enrolled: register with its node token"
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, message, "uuid_taken")
        if token is None:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, BAD_ENROLLMENT, "bad_enrollment")
        left = uses_left[token.id]
        uses_left[token.id] = None if left is None else left - 1
        values = pending.values
        if existing is None:
            values = values | {"enrollment_key_hash": pending.enrollment_key_hash}
        return Admission(values, pending.labels, existing, token.id, issue_token=True)

    def _note_identities(self, requests: list[Pending], outcomes: list[Outcome]) -> None:
        """Prime the identity cache with what was just committed; a node enrolled again has
        its old token forgotten first."""
        again = {
            o.node_id
            for o in outcomes
            if isinstance(o, Registration) and o.node_token and not o.created
        }
        if again:
            self._identities.forget_nodes(again)
        for pending, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, Registration):
                token_hash = (
                    digest(outcome.node_token) if outcome.node_token else pending.token_hash
                )
                self._identities.remember(NodeIdentity(outcome.node_id, pending.uuid), token_hash)


def _lost_answer_of(pending: Pending, node: KnownNode) -> bool:
    """The node has not been heard from since it enrolled, and the caller is the daemon that
    enrolled it: it never got the answer carrying its token."""
    held = node.enrollment_key_hash
    offered = pending.enrollment_key_hash
    return (
        node.answer_lost
        and held is not None
        and offered is not None
        and hmac.compare_digest(held, offered)
    )


def _check_certificate(pending: Pending) -> None:
    cert_uuid = pending.caller.cert_uuid
    if cert_uuid is None:
        raise Refused(grpc.StatusCode.UNAUTHENTICATED, "no node certificate", "no_cert")
    if cert_uuid != pending.uuid:
        message = "the certificate names another node"
        raise Refused(grpc.StatusCode.PERMISSION_DENIED, message, "other_node")


def rounds(batch: list[Pending]) -> list[list[Pending]]:
    """Split a batch so that no round holds a uuid twice: the n-th request for a uuid goes to
    round n, so the requests for one node are decided one after another, in arrival order."""
    split: list[list[Pending]] = []
    seen: dict[str, int] = {}
    for pending in batch:
        index = seen.get(pending.uuid, 0)
        seen[pending.uuid] = index + 1
        if index == len(split):
            split.append([])
        split[index].append(pending)
    return split


def _fail(requests: list[Pending], error: Exception, refused: bool) -> None:
    """Answer every caller of a round that could not be written. A request that failed alone
    while the rest of its round was written is one the database refuses: retrying cannot help."""
    database = isinstance(error, (sqlalchemy.exc.SQLAlchemyError, EnrollmentRaced))
    if database:
        log.warning("registration batch failed", size=len(requests), error=type(error).__name__)
    else:
        log.error("registration batch failed", size=len(requests), exc_info=error)
    answer: DomainError
    for pending in requests:
        if pending.done.done():
            continue
        if refused:
            answer = InvalidArgument("the Manager cannot store this registration")
        elif database:
            answer = DatabaseError("database busy; retry")
        else:
            answer = InternalError()
        pending.done.set_exception(answer)
