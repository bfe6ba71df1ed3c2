"""Reports not yet acknowledged by the Manager, and the per-stream sequence numbers.

One state machine serves both transports. On a Connect stream every message gets a `seq` and
the Manager acknowledges cumulatively; unary calls are settled through the same `acknowledge`
with a StreamAck made from the call's outcome, so retry, drop and order rules live here once.

- Metric reports are all kept (bounded: a full buffer drops the oldest and counts it) and
  resent oldest first after a reconnect.
- Heartbeats are coalesced: only the latest matters, so a newer one replaces an unsent one and
  a refused old one is not resent when a newer exists.
- Command results (done, or failed with the reason) wait here until the Manager has seen
  them: on a Connect stream in their own message, over unary calls on the next heartbeat.
- Update states are steps of one state machine on the Manager, so they go one at a time, in
  order: the next leaves only once the one before is acknowledged (a refusal to retry puts it
  back first in line); a newer download progress replaces one still waiting.
- Task results (an execution's `running`, then its final state) go the same way, in a line
  of their own. Parts of a running execution's output share that line, so the Manager sees
  them after the `running` and before the final state; parts of one execution that wait
  back to back are sent as one message (up to MAX_OUTPUT_MESSAGE bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from dataclasses import dataclass, field

from opscaffold.daemon.codes import Disposition, disposition
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb

ReportMessage = pb.HeartbeatRequest | pb.ReportMetricsRequest
TaskLine = pb.TaskResultReport | pb.TaskOutputReport  # what travels in the task line
MAX_IDS_PER_ACK = 1000  # the Manager reads no more per message
MAX_OUTPUT_MESSAGE = 1024 * 1024  # bytes of output merged into one message, well below gRPC's cap


@dataclass(slots=True, eq=False)
class Report:
    order: int  # creation order: resends go oldest first
    message: ReportMessage
    sent_at: float = 0.0  # monotonic, last time it went on the wire

    @property
    def kind(self) -> str:
        return "heartbeat" if isinstance(self.message, pb.HeartbeatRequest) else "metrics"

    def __lt__(self, other: Report) -> bool:
        return self.order < other.order


@dataclass(slots=True)
class _InFlight:
    sent_at: float
    report: Report | None  # None: command results, or an update state
    results: tuple[pb.CommandResult, ...] = ()
    update: pb.UpdateStatusReport | None = None
    task: TaskLine | None = None

    @property
    def kind(self) -> str:
        if self.update is not None:
            return "update_status"
        if isinstance(self.task, pb.TaskOutputReport):
            return "task_output"
        if self.task is not None:
            return "task_result"
        return "command_ack" if self.report is None else self.report.kind


@dataclass(frozen=True, slots=True)
class Refused:
    kind: str  # heartbeat, metrics, command_ack, update_status, task_result, task_output
    code: str
    message: str
    kept: bool  # True: queued again for a later resend


@dataclass(slots=True)
class AckOutcome:
    committed: list[Report] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)

    @property
    def retry_later(self) -> bool:
        return any(r.kept for r in self.refused)

    @property
    def fatal(self) -> Refused | None:
        return next((r for r in self.refused if disposition(r.code) is Disposition.FATAL), None)


class Outbox:
    def __init__(self, capacity: int = 10_000, window: int = 256) -> None:
        if capacity < 1 or window < 1:
            raise ValueError("capacity and window must be positive")
        self.capacity = capacity
        # The window never exceeds the capacity, so an overflow always finds an unsent report
        # to drop and never discards one whose acknowledgement is on its way.
        self.window = min(window, capacity)
        self.dropped = 0
        self._metrics: deque[Report] = deque()
        self._heartbeat: Report | None = None
        self._latest_heartbeat = -1  # order of the newest heartbeat ever queued
        self._results: list[pb.CommandResult] = []
        self._updates: deque[pb.UpdateStatusReport] = deque()
        self._updates_settled = asyncio.Event()  # set while no update state is unacknowledged
        self._updates_settled.set()
        self._tasks: deque[TaskLine] = deque()
        self._inflight: dict[int, _InFlight] = {}
        self._seq = 0
        self._order = itertools.count()
        self._wake = asyncio.Event()

    # ---- producers -----------------------------------------------------------------------

    def put_heartbeat(self, message: pb.HeartbeatRequest) -> None:
        self._heartbeat = self._report(message)
        self._latest_heartbeat = self._heartbeat.order
        self._wake.set()

    def put_metrics(self, message: pb.ReportMetricsRequest) -> None:
        self._metrics.append(self._report(message))
        if self.metrics_held() > self.capacity:
            self._metrics.popleft()
            self.dropped += 1
        self._wake.set()

    def put_result(self, result: pb.CommandResult) -> None:
        self._results.append(result)
        self._wake.set()

    def put_update(self, update: pb.UpdateStatusReport) -> None:
        last = self._updates[-1] if self._updates else None
        if (
            last is not None
            and last.record_id == update.record_id
            and last.status == update.status == "downloading"
        ):
            self._updates[-1] = update  # only the newest progress is worth sending
        else:
            self._updates.append(update)
        self._updates_settled.clear()
        self._wake.set()

    def put_task_result(self, report: pb.TaskResultReport) -> None:
        self._tasks.append(report)
        self._wake.set()

    def put_task_output(self, part: pb.TaskOutputReport) -> None:
        """The next part of an execution's output; merged into the part waiting before it
        when that one is the same execution's and ends where this one starts."""
        last = self._tasks[-1] if self._tasks else None
        if isinstance(last, pb.TaskOutputReport) and _follows(last, part):
            merged = pb.TaskOutputReport()
            merged.CopyFrom(last)
            merged.data += part.data
            self._tasks[-1] = merged
        else:
            self._tasks.append(part)
        self._wake.set()

    def take_results(self) -> list[pb.CommandResult]:
        """Results for a unary heartbeat to carry; `return_results` if it does not get through."""
        taken = self._results[:MAX_IDS_PER_ACK]
        del self._results[:MAX_IDS_PER_ACK]
        return taken

    def return_results(self, results: list[pb.CommandResult]) -> None:
        self._results[:0] = results

    # ---- the wire ------------------------------------------------------------------------

    def rewind(self) -> None:
        """A connection ended: everything on it is unacknowledged again, and the next one
        numbers its messages from 1."""
        returned = []
        for entry in self._inflight.values():
            if entry.update is not None:
                self._updates.appendleft(entry.update)
            elif entry.task is not None:
                self._tasks.appendleft(entry.task)
            elif entry.report is None:
                self._results[:0] = entry.results
            else:
                returned.append(entry.report)
        self._inflight.clear()
        self._seq = 0
        self._requeue(returned)

    def next_message(
        self, now: float | None = None, *, results: bool = True
    ) -> pb.DaemonMessage | None:
        """The next message to send, numbered and held in flight; None when nothing is
        waiting or the window of unacknowledged messages is full. `results=False` leaves
        command results for heartbeats to carry (unary calls have no message of their own)."""
        if len(self._inflight) >= self.window:
            return None
        now = time.monotonic() if now is None else now
        if results and self._results:
            taken = tuple(self.take_results())
            seq = self._track(_InFlight(now, None, taken))
            # Ids too, for a Manager that reads only those (it then marks every one done).
            ids = [r.command_id for r in taken if r.ok]
            ack = pb.CommandAck(command_ids=ids, results=taken)
            return pb.DaemonMessage(seq=seq, command_ack=ack)
        if self._updates and not any(e.update is not None for e in self._inflight.values()):
            update = self._updates.popleft()
            seq = self._track(_InFlight(now, None, update=update))
            return pb.DaemonMessage(seq=seq, update_status=update)
        if self._tasks and not any(e.task is not None for e in self._inflight.values()):
            task = self._tasks.popleft()
            seq = self._track(_InFlight(now, None, task=task))
            if isinstance(task, pb.TaskOutputReport):
                return pb.DaemonMessage(seq=seq, task_output=task)
            return pb.DaemonMessage(seq=seq, task_result=task)
        report = self._take_report()
        if report is None:
            return None
        report.sent_at = now
        seq = self._track(_InFlight(now, report))
        if isinstance(report.message, pb.HeartbeatRequest):
            return pb.DaemonMessage(seq=seq, heartbeat=report.message)
        return pb.DaemonMessage(seq=seq, metrics=report.message)

    def acknowledge(self, ack: pb.StreamAck) -> AckOutcome:
        """Settle every message up to `ack.seq`: committed unless refused; a refusal whose
        code says retry puts the message back in line."""
        refusals = {r.seq: r for r in ack.refused}
        outcome = AckOutcome()
        returned: list[Report] = []
        for seq in list(self._inflight):
            if seq > ack.seq:
                break  # in flight is ordered by seq
            entry = self._inflight.pop(seq)
            refusal = refusals.get(seq)
            if refusal is None:
                if entry.report is not None:
                    outcome.committed.append(entry.report)
                continue
            keep = disposition(refusal.code) is Disposition.KEEP
            outcome.refused.append(Refused(entry.kind, refusal.code, refusal.message, keep))
            if keep and entry.update is not None:
                self._updates.appendleft(entry.update)
            elif keep and entry.task is not None:
                self._tasks.appendleft(entry.task)
            elif keep and entry.report is None:
                self._results[:0] = entry.results
            elif keep and entry.report is not None:
                returned.append(entry.report)
        self._requeue(returned)
        if not self.updates_unsettled():
            self._updates_settled.set()
        self._wake.set()
        return outcome

    def oldest_unacknowledged(self) -> float | None:
        """When the longest-waiting message in flight was sent (monotonic)."""
        first = next(iter(self._inflight.values()), None)
        return None if first is None else first.sent_at

    async def wait(self, limit: float | None = None) -> None:
        """Until something was queued or acknowledged, or `limit` seconds passed."""
        # asyncio.timeout, not wait_for: no task per wait (a fleet makes thousands a second)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await self._wake.wait()
        self._wake.clear()

    # ---- introspection -------------------------------------------------------------------

    def metrics_held(self) -> int:
        """Metric reports not yet acknowledged, on the wire or waiting."""
        reports = (e.report for e in self._inflight.values() if e.report is not None)
        return len(self._metrics) + sum(1 for r in reports if r.kind == "metrics")

    def pending(self) -> list[Report]:
        """Reports waiting to be sent, in the order they will go."""
        head = [self._heartbeat] if self._heartbeat is not None else []
        return head + list(self._metrics)

    def pending_results(self) -> list[pb.CommandResult]:
        return list(self._results)

    async def wait_updates_settled(self, limit: float) -> bool:
        """Until every update state is acknowledged (True), or `limit` seconds passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await self._updates_settled.wait()
        return self._updates_settled.is_set()

    def updates_unsettled(self) -> bool:
        """Update states not yet acknowledged, waiting or on the wire."""
        return bool(self._updates) or any(e.update is not None for e in self._inflight.values())

    def pending_updates(self) -> list[pb.UpdateStatusReport]:
        """Update states waiting to be sent, in order."""
        return list(self._updates)

    def pending_task_results(self) -> list[pb.TaskResultReport]:
        """Task results waiting to be sent, in order."""
        return [t for t in self._tasks if isinstance(t, pb.TaskResultReport)]

    def pending_task_output(self) -> list[pb.TaskOutputReport]:
        """Parts of task output waiting to be sent, in order."""
        return [t for t in self._tasks if isinstance(t, pb.TaskOutputReport)]

    def pending_acks(self) -> list[str]:
        """The ids of the command results waiting to be sent."""
        return [r.command_id for r in self._results]

    # ---- internals -----------------------------------------------------------------------

    def _report(self, message: ReportMessage) -> Report:
        return Report(next(self._order), message)

    def _track(self, entry: _InFlight) -> int:
        self._seq += 1
        self._inflight[self._seq] = entry
        return self._seq

    def _take_report(self) -> Report | None:
        # The heartbeat goes first: it is what keeps the node online in the Manager's eyes.
        if self._heartbeat is not None:
            report, self._heartbeat = self._heartbeat, None
            return report
        return self._metrics.popleft() if self._metrics else None

    def _requeue(self, reports: list[Report]) -> None:
        metrics = sorted(r for r in reports if r.kind == "metrics")
        if metrics:
            self._metrics = deque(heapq.merge(metrics, self._metrics))
        for report in reports:
            # A returned heartbeat is worth resending only while it is the newest one: any
            # later heartbeat, sent or waiting, says everything it says.
            if report.kind == "heartbeat" and report.order == self._latest_heartbeat:
                self._heartbeat = report


def _follows(before: pb.TaskOutputReport, part: pb.TaskOutputReport) -> bool:
    """`part` continues `before` (same execution, starting where it ends), and both fit in
    one message."""
    size = len(before.data.encode())
    return (
        part.execution_id == before.execution_id
        and part.node_uuid == before.node_uuid
        and part.offset == before.offset + size
        and size + len(part.data.encode()) <= MAX_OUTPUT_MESSAGE
    )
