"""Task envelopes as a virtual node carries them out: checked as the Agent checks them
(signature with the key pinned at the node's first enrollment, node, expiry, replay), then
answered `running` and, after a configured time, success or failure, without running
anything, so task executions can be load-tested with thousands of nodes. A `task_cancel`
ends a simulated execution as `cancelled`.

Results go through the session's outbox like the daemon's; with a seed, the same node and
execution always go the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from opscaffold.daemon.commands import CommandError
from opscaffold.daemon.orders import task_report
from opscaffold.protocol.task import (
    CancelOrder,
    EnvelopeBody,
    EnvelopeRefused,
    TaskOrder,
    TaskResult,
    load_public_key,
    open_envelope,
)

if TYPE_CHECKING:
    from opscaffold.daemon.session import NodeSession

log = logging.getLogger(__name__)
KEEP_SEEN = 256  # execution ids remembered per node, to refuse a replay


@dataclass(frozen=True, slots=True)
class TaskBehaviour:
    failure_rate: float = 0.0  # share of executions that fail (exit code 1)
    seconds: float = 1.0  # how long an execution runs, before jitter
    jitter: float = 0.1
    seed: int | None = None

    def fate(self, index: int, execution_id: str) -> tuple[float, bool]:
        """(seconds it runs, whether it fails)."""
        if self.seed is None:
            rng = random.Random()  # noqa: S311 - simulation
        else:
            rng = random.Random(f"{self.seed}:{index}:{execution_id}")  # noqa: S311
        fails = rng.random() < self.failure_rate
        return self.seconds * rng.uniform(1 - self.jitter, 1 + self.jitter), fails


@dataclass
class TaskCounts:
    """Final states of the whole fleet's executions, for the summary."""

    finals: Counter[str] = field(default_factory=Counter)


class NodeTasks:
    def __init__(
        self, index: int, node_uuid: str, behaviour: TaskBehaviour, counts: TaskCounts
    ) -> None:
        self.index = index
        self.node_uuid = node_uuid
        self.behaviour = behaviour
        self.counts = counts
        self.key: ed25519.Ed25519PublicKey | None = None
        self.session: NodeSession | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._running: dict[str, asyncio.Event] = {}

    def offer_key(self, pem: bytes) -> None:
        """Pinned the first time, as a daemon without --manager-key does."""
        if self.key is None:
            try:
                self.key = load_public_key(pem)
            except ValueError:
                log.warning("node %d: the Manager's task key is not usable", self.index)

    async def carry_out(self, payload: bytes) -> None:
        body = self._check(payload)
        self._report(
            TaskResult(
                execution_id=body.execution_id, status="running", started_at=int(time.time())
            )
        )
        seconds, fails = self.behaviour.fate(self.index, body.execution_id)
        cancelled = self._running[body.execution_id] = asyncio.Event()
        started = int(time.time())
        try:
            try:
                async with asyncio.timeout(min(seconds, body.timeout)):
                    await cancelled.wait()
                status, code, error = "cancelled", None, "cancelled"
            except TimeoutError:
                if seconds > body.timeout:
                    status, code, error = "timeout", None, "simulated timeout"
                elif fails:
                    status, code, error = "failed", 1, "exit code 1"
                else:
                    status, code, error = "success", 0, ""
        finally:
            self._running.pop(body.execution_id, None)
        self.counts.finals[status] += 1
        self._report(
            TaskResult(
                execution_id=body.execution_id,
                status=status,
                exit_code=code,
                output=f"simulated {body.type} task on node {self.index}\n",
                error=error,
                started_at=started,
                finished_at=int(time.time()),
            )
        )

    def _check(self, payload: bytes) -> EnvelopeBody:
        try:
            order = TaskOrder.model_validate_json(payload or b"{}")
        except ValidationError as exc:
            raise CommandError(f"the task order is not valid: {exc}") from exc
        if self.key is None:
            raise CommandError("no Manager task key is pinned on this node; tasks refused")
        try:
            body = open_envelope(order.envelope, self.key)
        except EnvelopeRefused as exc:
            raise CommandError(f"the agent refused the task: {exc}") from exc
        if body.node_uuid != self.node_uuid:
            raise CommandError("the agent refused the task: it names another node")
        if time.time() > body.not_after:
            raise CommandError("the agent refused the task: the envelope has expired")
        if body.execution_id in self._seen:
            raise CommandError("the agent refused the task: received before; not run again")
        self._seen[body.execution_id] = None
        if len(self._seen) > KEEP_SEEN:
            self._seen.popitem(last=False)
        return body

    async def cancel(self, payload: bytes) -> None:
        try:
            order = CancelOrder.model_validate_json(payload or b"{}")
        except ValidationError as exc:
            raise CommandError(f"the cancel order is not valid: {exc}") from exc
        if (event := self._running.get(order.execution_id)) is not None:
            event.set()

    def _report(self, result: TaskResult) -> None:
        if self.session is not None:
            self.session.outbox.put_task_result(task_report(result))
