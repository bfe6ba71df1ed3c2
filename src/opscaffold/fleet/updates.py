"""Update orders as a virtual node carries them out: checked as the daemon's updater checks
them, then walked through the states of the Manager's update record without downloading or
installing anything, so a rollout can be load-tested with thousands of nodes.

How a walk goes is configured (UpdateBehaviour): how long it takes from downloading to
success, and which share of orders fails (`failed` while downloading or installing, or
`rollback` while verifying). With a seed, the same node and record always go the same way.
The states go through the session's outbox, one at a time and in order, like the daemon's;
the final one is also the command's result. An order is carried out once per record: one
delivered again, by any command, is answered with its remembered outcome.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from cryptography.hazmat.primitives.asymmetric import rsa

from opscaffold.daemon.commands import CommandError
from opscaffold.daemon.orders import command_error, parse_order, status_report
from opscaffold.protocol.manifest import BadSignature, verify
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.update import MAX_MESSAGE, UpdateOrder, UpdateState, UpdateStatus
from opscaffold.protocol.versions import InvalidVersion, Version

if TYPE_CHECKING:
    from opscaffold.daemon.session import NodeSession

log = logging.getLogger(__name__)
Stage = Literal["downloading", "installing", "verifying"]
STAGES: tuple[Stage, ...] = ("downloading", "installing", "verifying")
# Share of an update's time spent in each stage (a download dominates, as on real nodes).
SHARES: dict[Stage, float] = {"downloading": 0.6, "installing": 0.2, "verifying": 0.2}
PROGRESS_STEPS = 4  # download progress reports: 25, 50, 75, 100 %
KEEP_OUTCOMES = 64  # records remembered per node, to answer a redelivered order
PLATFORM = ("linux", "amd64")  # what every virtual node says it is


@dataclass(frozen=True, slots=True)
class Fate:
    """How one order will go on one node: its duration, and the stage it fails in, if any."""

    seconds: float
    fails_in: Stage | None


@dataclass(frozen=True, slots=True)
class UpdateBehaviour:
    failure_rate: float = 0.0  # share of orders that end failed or rollback
    seconds: float = 5.0  # from downloading to the final state, before jitter
    jitter: float = 0.1  # the duration is scaled by a random factor in 1 ± jitter
    seed: int | None = None  # set: the same node and record always go the same way
    trusted_keys: tuple[rsa.RSAPublicKey, ...] = ()  # set: signatures are checked

    def fate(self, index: int, record_id: int) -> Fate:
        if self.seed is None:
            rng = random.Random()  # noqa: S311 - simulation
        else:
            rng = random.Random(f"{self.seed}:{index}:{record_id}")  # noqa: S311
        fails = rng.random() < self.failure_rate
        stage = rng.choice(STAGES)
        seconds = self.seconds * rng.uniform(1 - self.jitter, 1 + self.jitter)
        return Fate(seconds, stage if fails else None)


@dataclass
class UpdateCounts:
    """Final states of the whole fleet's orders, for the summary."""

    finals: Counter[str] = field(default_factory=Counter)


class NodeUpdates:
    """One virtual node's orders: one at a time, each record carried out once."""

    def __init__(
        self,
        index: int,
        behaviour: UpdateBehaviour,
        versions: dict[str, str],
        installed: Callable[[str, str], None],
        counts: UpdateCounts,
    ) -> None:
        self.index = index
        self.behaviour = behaviour
        self.versions = versions  # component → version, the node's own (changed on success)
        self.session: NodeSession | None = None
        self._installed = installed
        self._counts = counts
        self._lock = asyncio.Lock()
        self._outcomes: OrderedDict[int, UpdateState] = OrderedDict()
        self._running: dict[int, asyncio.Task[UpdateState]] = {}

    async def carry_out(self, command: pb.Command) -> None:
        """Carry out the command's order; its final state is the command's result."""
        order = parse_order(command.payload)
        task = self._running.get(order.record_id)
        if task is None:
            remembered = self._outcomes.get(order.record_id)
            if remembered is not None:
                log.debug("node %d: update %d seen before", self.index, order.record_id)
                self._put(remembered, order)  # the same final state again: a no-op
                _raise_for(remembered)
                return
            task = asyncio.create_task(self._walk(order), name=f"update-{order.record_id}")
            self._running[order.record_id] = task
            task.add_done_callback(lambda _: self._running.pop(order.record_id, None))
        try:
            final = await asyncio.shield(task)
        except asyncio.CancelledError:
            # The session ended under the order (churn, as if the connection dropped): the
            # order goes on, and its result is queued once it ends.
            task.add_done_callback(functools.partial(self._late_result, command.id))
            raise
        _raise_for(final)

    def stop(self) -> list[asyncio.Task[UpdateState]]:
        """Cancel the orders under way (the fleet is stopping); returns their tasks."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        return tasks

    def _late_result(self, command_id: str, task: asyncio.Task[UpdateState]) -> None:
        if task.cancelled() or task.exception() is not None or self.session is None:
            return
        self.session.command_done(command_id, command_error(task.result()))

    async def _walk(self, order: UpdateOrder) -> UpdateState:
        async with self._lock:  # one order at a time, as the daemon's updater
            try:
                final = await self._steps(order)
            except Exception as exc:  # a bug: still an answer for the Manager, as the daemon's
                log.exception("node %d: update %d failed", self.index, order.record_id)
                final = _state(order, "failed", 0, f"{type(exc).__name__}: {exc}")
            self._remember(final)
            self._put(final, order)
            self._counts.finals[final.status] += 1
            if final.status == "success":
                manifest = order.manifest
                self.versions[manifest.component] = manifest.version
                self._installed(manifest.component, manifest.version)
            return final

    async def _steps(self, order: UpdateOrder) -> UpdateState:
        if (refusal := self._refusal(order)) is not None:
            return _state(order, "failed", 0, refusal)
        fate = self.behaviour.fate(self.index, order.record_id)
        download = fate.seconds * SHARES["downloading"]
        self._put(_state(order, "downloading", 0), order)
        for step in range(1, PROGRESS_STEPS + 1):
            await asyncio.sleep(download / PROGRESS_STEPS)
            if fate.fails_in == "downloading" and step == PROGRESS_STEPS // 2:
                return _state(order, "failed", 0, "simulated: the download was cut 3 times")
            self._put(_state(order, "downloading", step * 100 // PROGRESS_STEPS), order)
        self._put(_state(order, "installing", 0), order)
        await asyncio.sleep(fate.seconds * SHARES["installing"])
        if fate.fails_in == "installing":
            return _state(order, "failed", 0, "simulated: the package could not be unpacked")
        self._put(_state(order, "verifying", 0), order)
        await asyncio.sleep(fate.seconds * SHARES["verifying"])
        if fate.fails_in == "verifying":
            return _state(order, "rollback", 0, self._rollback_reason(order))
        return _state(order, "success", 100)

    def _refusal(self, order: UpdateOrder) -> str | None:
        """Why the daemon would refuse the order before downloading, or None."""
        manifest = order.manifest
        if (manifest.os, manifest.arch) != PLATFORM:
            return (
                f"the package is for {manifest.os}/{manifest.arch}, "
                f"this node is {PLATFORM[0]}/{PLATFORM[1]}"
            )
        if manifest.size == 0:
            return "the manifest signs an empty file, which is no package"
        if (problem := self._version_problem(order)) is not None:
            return problem
        if self.behaviour.trusted_keys:
            try:
                verify(manifest, order.signature_bytes(), self.behaviour.trusted_keys)
            except BadSignature as exc:
                return str(exc)
        return None

    def _version_problem(self, order: UpdateOrder) -> str | None:
        manifest = order.manifest
        installed = self.versions[manifest.component]
        try:
            current = Version(installed)
        except InvalidVersion:
            return None
        wanted = Version(manifest.version)
        if wanted == current:
            return f"{manifest.component} {installed} is already installed"
        if wanted < current and not order.rollback:
            return (
                f"{manifest.component} {manifest.version} is older than the installed "
                f"{installed}; only a rollback may go back"
            )
        return None

    def _rollback_reason(self, order: UpdateOrder) -> str:
        manifest = order.manifest
        running = self.versions[manifest.component]
        if manifest.component == "agent":
            return (
                f"simulated: the agent {manifest.version} did not answer /health; "
                f"switched back to {running}"
            )
        return f"simulated: daemon {manifest.version} did not stay up; running {running}"

    def _put(self, state: UpdateState, order: UpdateOrder) -> None:
        if self.session is not None:
            self.session.outbox.put_update(status_report(state, order.manifest.version))

    def _remember(self, state: UpdateState) -> None:
        self._outcomes[state.record_id] = state
        self._outcomes.move_to_end(state.record_id)
        while len(self._outcomes) > KEEP_OUTCOMES:
            self._outcomes.popitem(last=False)


def _state(
    order: UpdateOrder, status: UpdateStatus, progress: int, message: str = ""
) -> UpdateState:
    return UpdateState(
        record_id=order.record_id, status=status, progress=progress, message=message[:MAX_MESSAGE]
    )


def _raise_for(state: UpdateState) -> None:
    if (error := command_error(state)) is not None:
        raise CommandError(error)
