"""One node's conversation with the Manager: register, report on schedule, take commands,
reconnect with backoff. The daemon and every virtual node of the fleet simulator run this.

The owner (the daemon, or a virtual node) supplies what is reported and carries out commands;
this module owns the protocol: which transport, what to resend, what ends the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import grpc

from opscaffold.daemon.backoff import Backoff
from opscaffold.daemon.codes import FATAL_CODES
from opscaffold.daemon.commands import (
    CommandError,
    Deduplicator,
    Intervals,
    interval_problem,
    parse_config,
)
from opscaffold.daemon.link import (
    EnrollmentRefused,
    Fatal,
    NodeCredentialRefused,
    RegistrationRejected,
    bearer,
    describe,
    status_name,
)
from opscaffold.daemon.outbox import AckOutcome, Outbox
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.text import wire_text

if TYPE_CHECKING:
    from opscaffold.daemon.link import Stub

log = logging.getLogger(__name__)
Transport = Literal["connect", "unary"]
# Codes after which a unary call's connection is suspect: reconnect (and re-register) first.
RECONNECT_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
# Commands that take minutes (a download, a restart, a health check): carried out beside the
# conversation, so acknowledgements and other commands keep flowing meanwhile.
LONG_COMMANDS = frozenset({"update", "task"})
# Our defaults (the design names none); the Manager's Register answer replaces them.
DEFAULT_INTERVALS = Intervals(heartbeat=30.0, metrics=60.0)


class NodeOwner(Protocol):
    """What the session needs from whoever runs the node."""

    async def register_request(self) -> pb.RegisterRequest: ...

    async def agent_status(self) -> pb.AgentStatus: ...

    async def metrics(self) -> pb.NodeMetrics: ...

    async def on_command(self, command: pb.Command) -> None:
        """Carry out a command (quickly: the stream waits); `config` intervals are already
        applied by the session. Raise CommandError for one that cannot be done: its message
        is the reason the Manager shows."""

    def identity_changed(self, identity: Identity) -> None:
        """Persist the node id and token the Manager just assigned."""

    def task_key_offered(self, pem: bytes) -> None:
        """The Manager's task-signing public key, as its Register answer names it: keep it
        if none is pinned yet; never replace a pinned one because of it."""


@dataclass(slots=True)
class Identity:
    uuid: str
    node_id: int | None = None
    node_token: str | None = None
    enrollment_key: str | None = None  # proves, on enrolling again, that this is the same daemon


@dataclass(frozen=True, slots=True)
class SessionSettings:
    transport: Transport = "connect"
    enrollment_token: str | None = None
    intervals: Intervals = DEFAULT_INTERVALS  # until the Manager says otherwise
    pin_intervals: bool = False  # ignore the Manager's intervals (load tests)
    jitter: float = 0.1  # each interval is scaled by a random factor in 1 ± jitter
    stagger: bool = False  # first reports at a random point of the first interval
    call_timeout: float = 10.0
    ack_timeout: float = 60.0  # a stream with a message unacknowledged this long is dead
    backoff_initial: float = 1.0
    backoff_cap: float = 30.0
    capacity: int = 10_000
    window: int = 256


@dataclass
class Stats:
    """Counters of one node, or of many sharing one instance (the fleet)."""

    registrations: int = 0
    sent: int = 0  # reports written, resends included
    acknowledged: int = 0  # reports the Manager committed
    acknowledged_metrics: int = 0  # of which metric reports (each is one stored row)
    commands: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency_samples: int = 100_000
    _latencies: list[float] = field(default_factory=list, init=False, repr=False)
    _seen: int = field(default=0, init=False, repr=False)

    def record_latency(self, seconds: float) -> None:
        """Reservoir sampling: a uniform sample of every latency, in bounded memory."""
        self._seen += 1
        if len(self._latencies) < self.latency_samples:
            self._latencies.append(seconds)
            return
        slot = random.randrange(self._seen)  # noqa: S311 - statistics, not secrets
        if slot < self.latency_samples:
            self._latencies[slot] = seconds

    def percentile(self, q: float) -> float | None:
        if not self._latencies:
            return None
        ordered = sorted(self._latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class ConnectionLost(Exception):
    pass


class _NodeLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes the node: the fleet runs thousands of sessions in one log."""

    def __init__(self, logger: logging.Logger, node: str) -> None:
        super().__init__(logger)
        self.node = node

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[node {self.node}] {msg}", kwargs


class NodeSession:
    def __init__(
        self,
        stub: Stub,
        owner: NodeOwner,
        identity: Identity,
        settings: SessionSettings,
        stats: Stats | None = None,
    ) -> None:
        self.identity = identity
        self.settings = settings
        self.stats = stats if stats is not None else Stats()
        self.outbox = Outbox(settings.capacity, settings.window)
        self._stub = stub
        self._owner = owner
        self._intervals = settings.intervals
        self._intervals_changed = asyncio.Event()
        self._dedup = Deduplicator()
        self._running: dict[str, asyncio.Task[None]] = {}  # long commands under way, by id
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_cap)
        self._resume_at = 0.0  # monotonic; the Manager asked us to hold off until then
        self._log = _NodeLog(log, identity.uuid[:8])

    @property
    def intervals(self) -> Intervals:
        return self._intervals

    def set_intervals(self, intervals: Intervals) -> None:
        if intervals == self._intervals:
            return
        self._log.info(
            "intervals now heartbeat=%gs metrics=%gs", intervals.heartbeat, intervals.metrics
        )
        self._intervals = intervals
        self._intervals_changed.set()

    async def run(self) -> None:
        """Report and take commands until cancelled; raises Fatal when the Manager refuses
        this node's identity. The outbox survives, so running again resends what is left."""
        ticker = asyncio.create_task(self._tick(), name=f"ticker-{self.identity.uuid[:8]}")
        try:
            await self._converse()
        finally:
            ticker.cancel()
            for task in self._running.values():
                task.cancel()
            await asyncio.gather(ticker, *self._running.values(), return_exceptions=True)

    async def handle_command(self, command: pb.Command) -> None:
        """Carry out a command once (the Manager delivers at least once) and queue its result
        for the Manager: done, or failed with the reason. A redelivered command is answered
        with the result it had; an expired one fails without being carried out."""
        self.stats.commands += 1
        if command.id in self._running:
            self._log.debug("command %s is still being carried out", command.id)
            return  # its result follows when it is done
        if not self._dedup.first_time(command.id):
            self._log.debug("command %s seen before; reporting its result again", command.id)
            error = self._dedup.outcome(command.id)
        elif command.expires_at and command.expires_at < time.time():
            self._log.info("command %s (%s) expired; not carried out", command.id, command.type)
            error = "expired before it reached the node"
        elif command.type in LONG_COMMANDS:
            task = asyncio.create_task(self._carry_out_long(command), name=f"command-{command.id}")
            self._running[command.id] = task
            return
        else:
            error = await self._carry_out(command)
        self._result(command.id, error)

    def command_done(self, command_id: str, error: str | None) -> None:
        """Report the result of a command carried out before this session began (an update
        that re-executed the daemon); a redelivery is answered the same way."""
        self._dedup.first_time(command_id)
        self._result(command_id, error)

    async def _carry_out_long(self, command: pb.Command) -> None:
        try:
            error = await self._carry_out(command)
        finally:
            self._running.pop(command.id, None)
        self._result(command.id, error)

    def _result(self, command_id: str, error: str | None) -> None:
        self._dedup.record(command_id, error)
        reason = wire_text(error or "")
        result = pb.CommandResult(command_id=command_id, ok=error is None, error=reason)
        self.outbox.put_result(result)

    # ---- connection lifecycle ------------------------------------------------------------

    async def _converse(self) -> None:
        registered = False
        while True:
            try:
                # Once per run: a reconnect (say, after the Manager restarted) goes straight
                # back to reporting, so a fleet reconnecting at once is not a registration storm.
                if not registered or not self.identity.node_token:
                    await self._register()
                    registered = True
                await self._exchange()
            except grpc.aio.AioRpcError as error:
                self._on_rpc_error(error)
            except (ConnectionLost, TimeoutError) as lost:
                self._log.warning("connection lost: %s", str(lost) or "a write timed out")
            except Fatal:
                raise  # the Manager refused this node: only that ends a session
            except Exception as error:
                # Whatever else the transport throws (a call that ended under us, a library
                # error), the node must come back: a fleet restart must not strand nodes.
                self.stats.errors[type(error).__name__] += 1
                self._log.exception("conversation failed; reconnecting")
            finally:
                self.outbox.rewind()
            delay = self._backoff.next()
            self._log.info("reconnecting in %.1fs", delay)
            await asyncio.sleep(delay)

    def _on_rpc_error(self, error: grpc.aio.AioRpcError) -> None:
        code = status_name(error)
        self.stats.errors[code] += 1
        if code in FATAL_CODES:
            raise NodeCredentialRefused(
                f"the Manager refused this node's credential ({describe(error)}): the node was "
                "deleted or its token revoked. Not enrolling again on our own; an operator "
                "must enroll it again."
            ) from error
        self._log.warning("call failed: %s", describe(error))

    async def _register(self) -> None:
        request = await self._owner.register_request()
        request.uuid = self.identity.uuid
        if self.identity.enrollment_key:
            request.enrollment_key = self.identity.enrollment_key
        token = self.identity.node_token or self.settings.enrollment_token
        try:
            response = await self._stub.Register(
                request, metadata=bearer(token), timeout=self.settings.call_timeout
            )
        except grpc.aio.AioRpcError as error:
            if (refusal := self._registration_refusal(error)) is not None:
                self.stats.errors[status_name(error)] += 1
                raise refusal from error
            raise  # the Manager is unreachable or busy: retry with backoff
        self.stats.registrations += 1
        self._adopt(response)
        if response.task_public_key:
            self._owner.task_key_offered(response.task_public_key)
        self.adopt_intervals(response)
        self._log.info("registered as node %d", response.node_id)

    def adopt_intervals(self, response: pb.RegisterResponse) -> None:
        """Take the intervals a Register answer names; one out of range keeps its current
        value (a Manager that stored a bad value must not make the node report non-stop)."""
        if self.settings.pin_intervals:
            return
        self.set_intervals(
            Intervals(
                self._offered("heartbeat_interval", response.heartbeat_interval, "heartbeat"),
                self._offered("metric_interval", response.metric_interval, "metrics"),
            )
        )

    def _offered(self, key: str, seconds: int, current: str) -> float:
        kept: float = getattr(self._intervals, current)
        if seconds == 0:  # not named (a Manager built from the design's proto may leave it)
            return kept
        if (problem := interval_problem(key, seconds, str(seconds))) is not None:
            self._log.warning("Register answer: %s; keeping %gs", problem, kept)
            return kept
        return float(seconds)

    def _registration_refusal(self, error: grpc.aio.AioRpcError) -> Fatal | None:
        code = status_name(error)
        if code == "INVALID_ARGUMENT":
            return RegistrationRejected(f"registration rejected: {describe(error)}")
        if code not in FATAL_CODES:
            return None
        if self.identity.node_token:
            return NodeCredentialRefused(
                f"the Manager refused this node's token on Register ({describe(error)}): the "
                "node was deleted or its token revoked. Not enrolling again on our own; enroll "
                "it explicitly (ops-daemon run --re-enroll keeps the uuid)."
            )
        if self.settings.enrollment_token:
            return EnrollmentRefused(f"enrollment token refused: {describe(error)}")
        return NodeCredentialRefused(
            f"registration refused ({describe(error)}): no token was presented, so only a "
            "client certificate (mTLS) could identify this node"
        )

    def _adopt(self, response: pb.RegisterResponse) -> None:
        token = response.node_token or self.identity.node_token  # empty in mTLS mode
        if (response.node_id, token) == (self.identity.node_id, self.identity.node_token):
            return
        self.identity.node_id = response.node_id
        self.identity.node_token = token
        self._owner.identity_changed(self.identity)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.identity.node_token)

    async def _exchange(self) -> None:
        if self.settings.transport == "connect":
            try:
                await self._stream()
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                self._log.warning(
                    "the Manager has no Connect stream; using unary Heartbeat and "
                    "ReportMetrics until the next reconnect"
                )
                self.outbox.rewind()
        await self._unary()

    # ---- Connect stream ------------------------------------------------------------------

    async def _stream(self) -> None:
        call = self._stub.Connect(metadata=self._metadata())
        try:
            await _first_to_fail(self._stream_writer(call), self._stream_reader(call))
        finally:
            call.cancel()

    async def _stream_writer(self, call: Any) -> None:
        while True:
            now = time.monotonic()
            oldest = self.outbox.oldest_unacknowledged()
            if oldest is not None and now - oldest > self.settings.ack_timeout:
                raise ConnectionLost(f"no acknowledgement for {self.settings.ack_timeout:g}s")
            message = self.outbox.next_message(now) if now >= self._resume_at else None
            if message is None:
                await self.outbox.wait(self._writer_timeout(now, oldest))
                continue
            await self._write(call, message)
            if message.WhichOneof("body") != "command_ack":
                self.stats.sent += 1

    async def _write(self, call: Any, message: pb.DaemonMessage) -> None:
        # A write to a call that has ended (the Manager went away, or ended the stream) raises
        # InvalidStateError: report how the call ended instead, as the reader would.
        if call.done():
            raise await _ended(call)
        try:
            # A Manager that stopped reading would block this write forever; the stream is
            # as dead as one that stopped acknowledging.
            async with asyncio.timeout(self.settings.ack_timeout):
                await call.write(message)
        except asyncio.InvalidStateError:
            raise await _ended(call) from None

    def _writer_timeout(self, now: float, oldest: float | None) -> float | None:
        deadlines = [self._resume_at] if now < self._resume_at else []
        if oldest is not None:
            deadlines.append(oldest + self.settings.ack_timeout)
        return max(0.0, min(deadlines) - now) if deadlines else None

    async def _stream_reader(self, call: Any) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                raise ConnectionLost("the Manager closed the stream")
            body = message.WhichOneof("body")
            if body == "ack":
                self._settle(message.ack)
            elif body == "command":
                await self.handle_command(message.command)

    # ---- unary fallback ------------------------------------------------------------------

    async def _unary(self) -> None:
        while True:
            now = time.monotonic()
            # Command results ride on heartbeats here, not in messages of their own.
            ready = now >= self._resume_at
            message = self.outbox.next_message(now, results=False) if ready else None
            if message is None:
                paused = self._resume_at - now if now < self._resume_at else None
                await self.outbox.wait(paused)
                continue
            await self._send_unary(message)

    async def _send_unary(self, message: pb.DaemonMessage) -> None:
        self.stats.sent += 1
        try:
            success, commands = await self._unary_call(message)
        except grpc.aio.AioRpcError as error:
            if status_name(error) in RECONNECT_CODES:
                raise
            self._settle(_refusal(message.seq, status_name(error), error.details() or ""))
            return
        if not success:  # not committed, and not said why: like a busy Manager, try later
            self._settle(_refusal(message.seq, "ABORTED", "the Manager answered success=false"))
            return
        self._settle(pb.StreamAck(seq=message.seq))
        for command in commands:
            await self.handle_command(command)
        if commands:  # their results go with a heartbeat: send one now, not in an interval
            await self._produce(self._queue_heartbeat)

    async def _unary_call(self, message: pb.DaemonMessage) -> tuple[bool, list[pb.Command]]:
        options: dict[str, Any] = {
            "metadata": self._metadata(),
            "timeout": self.settings.call_timeout,
        }
        if message.HasField("heartbeat"):
            return await self._unary_heartbeat(message.heartbeat, options)
        if message.HasField("update_status"):
            update: pb.ReportUpdateStatusResponse = await self._stub.ReportUpdateStatus(
                message.update_status, **options
            )
            return update.success, []
        if message.HasField("task_result"):
            task: pb.ReportTaskResultResponse = await self._stub.ReportTaskResult(
                message.task_result, **options
            )
            return task.success, []
        if message.HasField("task_output"):
            output: pb.ReportTaskOutputResponse = await self._stub.ReportTaskOutput(
                message.task_output, **options
            )
            return output.success, []
        report: pb.ReportMetricsResponse = await self._stub.ReportMetrics(
            message.metrics, **options
        )
        return report.success, []

    async def _unary_heartbeat(
        self, heartbeat: pb.HeartbeatRequest, options: dict[str, Any]
    ) -> tuple[bool, list[pb.Command]]:
        """A heartbeat carrying the command results waiting to go; they wait again unless it
        is answered success. Results present, even none, tell the Manager we report them."""
        request = pb.HeartbeatRequest()
        request.CopyFrom(heartbeat)  # the queued one may be sent again: keep it as it was
        results = self.outbox.take_results()
        request.command_results.SetInParent()
        request.command_results.results.extend(results)
        try:
            beat: pb.HeartbeatResponse = await self._stub.Heartbeat(request, **options)
        except BaseException:
            self.outbox.return_results(results)
            raise
        if not beat.success:
            self.outbox.return_results(results)
        return beat.success, list(beat.commands)

    # ---- both transports -----------------------------------------------------------------

    def _settle(self, ack: pb.StreamAck) -> None:
        outcome = self.outbox.acknowledge(ack)
        now = time.monotonic()
        for report in outcome.committed:
            self.stats.acknowledged += 1
            if isinstance(report.message, pb.ReportMetricsRequest):
                self.stats.acknowledged_metrics += 1
            self.stats.record_latency(now - report.sent_at)
        self._log_refusals(outcome)
        if (fatal := outcome.fatal) is not None:
            raise NodeCredentialRefused(
                f"the Manager refused this node's credential ({fatal.code}: {fatal.message}); "
                "not enrolling again on our own"
            )
        if outcome.retry_later:
            self._resume_at = now + self._backoff.next()
        elif outcome.committed:
            self._backoff.reset()

    def _log_refusals(self, outcome: AckOutcome) -> None:
        for refused in outcome.refused:
            self.stats.refused[refused.code] += 1
            if refused.kept:
                self._log.info("%s deferred (%s): %s", refused.kind, refused.code, refused.message)
            else:
                self._log.warning(
                    "%s refused and dropped (%s): %s", refused.kind, refused.code, refused.message
                )

    async def _carry_out(self, command: pb.Command) -> str | None:
        """None when done, else the reason it was not."""
        try:
            if command.type == "config":
                self._apply_config(command.payload)
            await self._owner.on_command(command)
        except CommandError as error:
            self._log.warning("command %s (%s) not done: %s", command.id, command.type, error)
            return str(error)
        except Exception as error:
            self._log.exception("command %s (%s) failed", command.id, command.type)
            return f"the daemon failed carrying it out: {type(error).__name__}: {error}"
        return None

    def _apply_config(self, payload: bytes) -> None:
        change = parse_config(payload)
        if change.other:
            self._log.info("config keys not acted on by this daemon: %s", sorted(change.other))
        if self.settings.pin_intervals:
            self._log.info("intervals are pinned; config intervals ignored")
            return
        self.set_intervals(change.apply(self._intervals))

    # ---- the schedule --------------------------------------------------------------------

    async def _tick(self) -> None:
        now = time.monotonic()
        next_beat = now + self._first_delay(self._intervals.heartbeat)
        next_metrics = now + self._first_delay(self._intervals.metrics)
        while True:
            now = time.monotonic()
            if now >= next_beat:
                await self._produce(self._queue_heartbeat)
                next_beat = now + self._jittered(self._intervals.heartbeat)
            if now >= next_metrics:
                await self._produce(self._queue_metrics)
                next_metrics = now + self._jittered(self._intervals.metrics)
            if await _wait_event(self._intervals_changed, min(next_beat, next_metrics) - now):
                # A shorter interval takes effect now, not after the old, longer wait.
                now = time.monotonic()
                next_beat = min(next_beat, now + self._jittered(self._intervals.heartbeat))
                next_metrics = min(next_metrics, now + self._jittered(self._intervals.metrics))

    async def _produce(self, queue: Callable[[], Awaitable[None]]) -> None:
        try:
            await queue()
        except Exception:
            # A failing probe must not stop the schedule: the next tick tries again.
            self._log.exception("could not collect a report")

    async def _queue_heartbeat(self) -> None:
        status = await self._owner.agent_status()
        self.outbox.put_heartbeat(
            pb.HeartbeatRequest(
                node_uuid=self.identity.uuid, agent_status=status, timestamp=int(time.time())
            )
        )

    async def _queue_metrics(self) -> None:
        metrics = await self._owner.metrics()
        if not metrics.timestamp:
            metrics.timestamp = int(time.time())
        request = pb.ReportMetricsRequest(node_uuid=self.identity.uuid, metrics=metrics)
        self.outbox.put_metrics(request)

    def _first_delay(self, interval: float) -> float:
        return random.uniform(0, interval) if self.settings.stagger else 0.0  # noqa: S311

    def _jittered(self, interval: float) -> float:
        spread = self.settings.jitter
        return interval * random.uniform(1 - spread, 1 + spread)  # noqa: S311


async def _ended(call: Any) -> Exception:
    """The error that says how a finished call ended: its status, as an AioRpcError (so a
    refused credential still stops the node), or ConnectionLost when it ended cleanly."""
    code = await call.code()
    if code == grpc.StatusCode.OK:
        return ConnectionLost("the Manager closed the stream")
    error: Exception = grpc.aio.AioRpcError(
        code,
        await call.initial_metadata(),
        await call.trailing_metadata(),
        details=await call.details(),
    )
    return error


def _refusal(seq: int, code: str, message: str) -> pb.StreamAck:
    return pb.StreamAck(seq=seq, refused=[pb.Refusal(seq=seq, code=code, message=message)])


async def _wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Whether `event` was set within `seconds`; clears it."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, seconds)):
            await event.wait()
    fired = event.is_set()
    event.clear()
    return fired


async def _first_to_fail(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run loops that end only by raising; when one does, stop the others and re-raise."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()
