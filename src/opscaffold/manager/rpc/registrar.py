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

The batching stays here, beside the transport, because it is the boundary of a Register call
(as a request handler is for REST): it owns the transaction, answers each waiting caller, and
primes the edge's identity cache with what it committed. Every rule it applies (who may
register a uuid, what an enrollment counts as) is enrollment's: `enrollment.service.admit`
decides, `enrollment.service.register` writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.db import transaction
from opscaffold.manager.enrollment import service as enrollment_service
from opscaffold.manager.enrollment.service import (
    Admission,
    EnrollmentRaced,
    RegisterRequest,
    Registration,
    digest,
)
from opscaffold.manager.errors import (
    DomainError,
    IngestBusy,
    NodeNotFound,
)
from opscaffold.manager.kit.batching import GroupCommit, answer_failure, isolate
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.logging import get_logger
from opscaffold.manager.rpc.identity import Caller, IdentityResolver, NodeIdentity

log = get_logger("opscaffold.rpc.registrar")
MAX_BATCH = 256
MAX_DELAY = 0.05
# About four batches. A queued call is then answered within a second or two, well inside a
# daemon's 10 s deadline; beyond it callers are turned away at once (RESOURCE_EXHAUSTED) and
# back off. A longer queue would let calls pass their deadlines and come back together: a
# storm feeding itself.
MAX_QUEUE = 1024
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

    request: RegisterRequest
    done: asyncio.Future[Registered] = field(default_factory=_future)

    @property
    def uuid(self) -> str:
        return self.request.uuid


Outcome = Registration | DomainError  # a refusal, for its caller alone


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
        committed, or fails with a DomainError (a refusal for this caller only, or the
        batch's failure). Raises IngestBusy when the queue is full."""
        token_mode = self._identities.mode == "token"
        token_hash = digest(caller.bearer) if token_mode and caller.bearer else None
        request = RegisterRequest(values, labels, token_hash, caller.cert_uuid, enrollment_key_hash)
        pending = Pending(request)
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
            if isinstance(outcome, DomainError):
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
        asked = [p.request for p in requests]
        token_hashes = [r.token_hash for r in asked if r.token_hash is not None]
        columns = list(dict.fromkeys(column for r in asked for column in r.values))
        async with transaction(self._sessions) as session:
            found = await enrollment_service.look_up(
                session, [r.uuid for r in asked], token_hashes, columns, now
            )
            decisions = enrollment_service.admit(asked, found, mtls=self._identities.mode == "mtls")
            admitted = [d for d in decisions if isinstance(d, Admission)]
            registered = iter(await enrollment_service.register(session, admitted, now))
        return [d if isinstance(d, DomainError) else next(registered) for d in decisions]

    async def _configs(self, outcomes: list[Outcome]) -> dict[int, dict[str, str]]:
        """Read after the commit, so the batch's write locks are not held for it."""
        node_ids = [o.node_id for o in outcomes if isinstance(o, Registration)]
        if not node_ids:
            return {}
        async with self._sessions() as session:
            return await self._effective_configs(session, node_ids)

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
                    digest(outcome.node_token) if outcome.node_token else pending.request.token_hash
                )
                self._identities.remember(NodeIdentity(outcome.node_id, pending.uuid), token_hash)


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
    answer_failure(requests, error, refused, what="registration", races=(EnrollmentRaced,))
