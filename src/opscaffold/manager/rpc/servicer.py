"""DaemonService: thin handlers that check identity, validate, and call the domain services.

Registrations are queued to the registrar, reports to the write-behind flusher and update
reports to their own batcher; all are written in batches and answered only once committed.
Commands come from the outbox and go out over whatever the daemon holds: our Connect stream
(which acknowledges), SubscribeUpdates, or the heartbeat response.

Every DomainError is answered one way (`_abort`): the gRPC status and message of its class,
and a refusal of the daemon's identity is counted and audited with its class's error code.
The Connect stream works with the Channel and this module's functions, as the handlers do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.audit import service as audit_service
from opscaffold.manager.command import service as command_service
from opscaffold.manager.command.bus import CommandBus
from opscaffold.manager.config import Settings
from opscaffold.manager.db import is_unavailable, transaction
from opscaffold.manager.errors import (
    NODE_REFUSALS,
    DomainError,
    IngestBusy,
    InvalidArgument,
    NodeCredentialRefused,
    NodeForbidden,
    NodeGone,
)
from opscaffold.manager.ingest import service as ingest_service
from opscaffold.manager.ingest.flusher import Flusher
from opscaffold.manager.kit.clock import utcnow
from opscaffold.manager.logging import get_logger
from opscaffold.manager.models import NodeCommand
from opscaffold.manager.node import config_keys
from opscaffold.manager.node import service as node_service
from opscaffold.manager.rollout import service as rollout_service
from opscaffold.manager.rpc import convert
from opscaffold.manager.rpc.identity import IdentityResolver, NodeIdentity, check_names_self
from opscaffold.manager.rpc.registrar import Registrar
from opscaffold.manager.rpc.streams import StreamRegistry
from opscaffold.manager.rpc.update_reports import UpdateReports
from opscaffold.manager.runtime import Runtime
from opscaffold.manager.task import output as task_output
from opscaffold.manager.task import service as task_service
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.ops.daemon import daemon_pb2_grpc

T = TypeVar("T")
log = get_logger("opscaffold.rpc")
# Streams also look at the outbox now and then, whatever the wake-ups say.
STREAM_POLL_S = 300.0
NODE_TOKEN_HEADER = "x-ops-node-token"  # noqa: S105 - a header name
NODE_GONE = "node was deleted"
SHUTTING_DOWN = "manager is shutting down; reconnect"
GONE = pb.ManagerMessage()  # marker on a stream's outgoing queue: end it, the node is gone
EffectiveConfig = Callable[[AsyncSession, int], Awaitable[dict[str, str]]]


@dataclass
class Channel:
    """What the servicer works with, built once per Manager process."""

    runtime: Runtime
    flusher: Flusher
    registrar: Registrar
    update_reports: UpdateReports
    identities: IdentityResolver
    streams: StreamRegistry
    bus: CommandBus
    effective_config: EffectiveConfig
    # Set when the Manager stops: streams answer what is in flight, then end (UNAVAILABLE),
    # so daemons resend what was not acknowledged to another replica, or to this one later.
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


def count(channel: Channel, method: str, status: grpc.StatusCode) -> None:
    channel.runtime.metrics.grpc_requests.labels(method=method, status=status.name).inc()


async def take_commands(
    channel: Channel, identity: NodeIdentity, *, reports_back: bool, via: str
) -> Sequence[NodeCommand]:
    """The node's commands due for delivery, marked as delivered over `via`."""
    async with transaction(channel.runtime.sessions) as session:
        commands = await command_service.take_for_delivery(
            session, identity.node_id, reports_back=reports_back, via=via
        )
    if len(commands) < command_service.BATCH:
        channel.bus.settled(identity.node_id)
    return commands


async def still_enrolled(channel: Channel, identity: NodeIdentity) -> bool:
    """A node deleted while its stream is open loses the stream."""
    return await channel.identities.by_uuid(identity.uuid) == identity


async def record_update_status(
    channel: Channel, identity: NodeIdentity, report: pb.UpdateStatusReport
) -> None:
    """Apply a node's report of an update to its record, committed before it is answered
    (in a batch with other nodes' reports)."""
    check_names_self(identity, report.node_uuid)
    convert.check_text(report)
    progress = rollout_service.progress_of(
        report.record_id, report.status, report.progress, report.error, report.version
    )
    await channel.update_reports.submit(identity.node_id, progress)


async def record_task_result(
    channel: Channel, identity: NodeIdentity, report: pb.TaskResultReport
) -> None:
    """Apply a node's report of a task execution, committed before it is answered; a resend
    of what is already stored changes nothing."""
    check_names_self(identity, report.node_uuid)
    convert.check_text(report)
    result = task_service.result_of(
        report.execution_id,
        report.status,
        report.exit_code if report.HasField("exit_code") else None,
        report.output,
        report.truncated,
        report.error,
        report.started_at,
        report.finished_at,
    )
    async with transaction(channel.runtime.sessions) as session:
        changed = await task_service.record_result(session, identity.node_id, result, utcnow())
    if changed:  # readers of its output learn that it ended
        await channel.runtime.output_bus.publish(result.execution_id, identity.node_id)


async def record_task_output(
    channel: Channel, identity: NodeIdentity, report: pb.TaskOutputReport
) -> None:
    """Store a part of a running execution's output, committed before it is answered; a
    resend of what is already stored changes nothing."""
    check_names_self(identity, report.node_uuid)
    convert.check_text(report)
    task_output.check_part(report.execution_id, report.offset, report.data)
    async with transaction(channel.runtime.sessions) as session:
        stored = await task_output.append(
            session, identity.node_id, report.execution_id, report.offset, report.data, utcnow()
        )
    if stored:
        await channel.runtime.output_bus.publish(report.execution_id, identity.node_id)


async def wait_or_poll(wake: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), STREAM_POLL_S)


class DaemonServicer(daemon_pb2_grpc.DaemonServiceServicer):
    def __init__(self, channel: Channel) -> None:
        self.c = channel

    # -- edges ------------------------------------------------------------------------------
    async def _abort(self, method: str, context: Any, error: DomainError) -> None:
        """The one way a DomainError is answered: with its own gRPC status and message. A
        refusal of the daemon's identity is also counted by reason and audited."""
        if isinstance(error, NODE_REFUSALS):
            await self._note_refusal(method, context, error)
        count(self.c, method, error.grpc_status)
        await context.abort(error.grpc_status, error.message)

    async def _note_refusal(
        self, method: str, context: Any, refused: NodeCredentialRefused | NodeForbidden
    ) -> None:
        """Count, and audit (folded per source and minute)."""
        self.c.runtime.metrics.grpc_refused.labels(reason=refused.reason).inc()
        trail = audit_service.AuditTrail(
            action="node.auth",
            resource_type="node",
            ip=self.c.identities.caller(context).peer_ip,
            detail={"method": method, "reason": refused.reason},
        )
        try:
            async with transaction(self.c.runtime.sessions) as session:
                await audit_service.record_failure(session, trail, refused.code, refused.message)
        except Exception:
            log.exception("audit of a refused call failed")

    async def _unary(self, method: str, context: Any, handle: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await handle()
        except DomainError as error:
            await self._abort(method, context, error)
            raise  # abort raised already; this keeps type checkers content
        except Exception as error:
            # A deadlock, a stalled or unreachable database: worth a retry.
            if isinstance(error, sqlalchemy.exc.SQLAlchemyError) or is_unavailable(error):
                log.warning("rpc hit a database error", method=method, error=type(error).__name__)
                count(self.c, method, grpc.StatusCode.UNAVAILABLE)
                await context.abort(grpc.StatusCode.UNAVAILABLE, "database busy; retry")
                raise
            log.exception("rpc failed", method=method)
            count(self.c, method, grpc.StatusCode.INTERNAL)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            raise
        count(self.c, method, grpc.StatusCode.OK)
        return result

    # -- Register ---------------------------------------------------------------------------
    async def Register(self, request: pb.RegisterRequest, context: Any) -> pb.RegisterResponse:
        return await self._unary("Register", context, lambda: self._register(request, context))

    async def _register(self, request: pb.RegisterRequest, context: Any) -> pb.RegisterResponse:
        caller = self.c.identities.caller(context)
        convert.check_text(request)
        values = convert.registration(request, caller.peer_ip)
        labels = convert.labels_of(request)
        key_hash = convert.enrollment_key_hash(request)
        registered = await self.c.registrar.submit(caller, values, labels, key_hash)
        if registered.node_token:
            await context.send_initial_metadata(((NODE_TOKEN_HEADER, registered.node_token),))
        log.info(
            "node registered", node_uuid=values["uuid"], ip=caller.peer_ip, new=registered.created
        )
        return pb.RegisterResponse(
            node_id=registered.node_id,
            heartbeat_interval=self._interval(registered.config, "heartbeat_interval"),
            metric_interval=self._interval(registered.config, "metric_interval"),
            node_token=registered.node_token,
            task_public_key=self.c.runtime.task_key.public_pem,
        )

    def _interval(self, config: dict[str, str], name: str) -> int:
        defaults = node_service.default_node_config(self.c.settings)
        return config_keys.seconds(config, name, int(defaults[name]))

    # -- reports ----------------------------------------------------------------------------
    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Any) -> pb.HeartbeatResponse:
        return await self._unary("Heartbeat", context, lambda: self._heartbeat(request, context))

    async def _heartbeat(self, request: pb.HeartbeatRequest, context: Any) -> pb.HeartbeatResponse:
        identity = await self.c.identities.of_call(context)
        check_names_self(identity, request.node_uuid)
        convert.check_text(request)
        await self.c.flusher.submit(ingest_service.heartbeat_report(identity.node_id, request))
        # A daemon that sends results (even none yet) reports what becomes of its commands.
        reports_back = request.HasField("command_results")
        if request.command_results.results:
            outcomes = convert.outcomes((), request.command_results.results)
            async with transaction(self.c.runtime.sessions) as session:
                await command_service.settle(session, identity.node_id, outcomes)
        if not self.c.bus.may_have(identity.node_id) or await self.c.streams.held_anywhere(
            identity.node_id
        ):
            return pb.HeartbeatResponse(success=True)
        commands = await take_commands(self.c, identity, reports_back=reports_back, via="heartbeat")
        return pb.HeartbeatResponse(
            success=True, commands=[convert.command_message(c) for c in commands]
        )

    async def ReportMetrics(
        self, request: pb.ReportMetricsRequest, context: Any
    ) -> pb.ReportMetricsResponse:
        return await self._unary("ReportMetrics", context, lambda: self._metrics(request, context))

    async def _metrics(
        self, request: pb.ReportMetricsRequest, context: Any
    ) -> pb.ReportMetricsResponse:
        identity = await self.c.identities.of_call(context)
        check_names_self(identity, request.node_uuid)
        convert.check_text(request)
        report = ingest_service.metric_report(identity.node_id, request, self.c.settings)
        await self.c.flusher.submit(report)
        return pb.ReportMetricsResponse(success=True)

    async def GetConfig(self, request: pb.GetConfigRequest, context: Any) -> pb.GetConfigResponse:
        return await self._unary("GetConfig", context, lambda: self._config(request, context))

    async def _config(self, request: pb.GetConfigRequest, context: Any) -> pb.GetConfigResponse:
        identity = await self.c.identities.of_call(context)
        check_names_self(identity, request.node_uuid)
        async with transaction(self.c.runtime.sessions) as session:
            config = await self.c.effective_config(session, identity.node_id)
        return pb.GetConfigResponse(config=config)

    async def ReportUpdateStatus(
        self, request: pb.UpdateStatusReport, context: Any
    ) -> pb.ReportUpdateStatusResponse:
        return await self._unary(
            "ReportUpdateStatus", context, lambda: self._update_status(request, context)
        )

    async def _update_status(
        self, request: pb.UpdateStatusReport, context: Any
    ) -> pb.ReportUpdateStatusResponse:
        identity = await self.c.identities.of_call(context)
        await record_update_status(self.c, identity, request)
        return pb.ReportUpdateStatusResponse(success=True)

    async def ReportTaskResult(
        self, request: pb.TaskResultReport, context: Any
    ) -> pb.ReportTaskResultResponse:
        return await self._unary(
            "ReportTaskResult", context, lambda: self._task_result(request, context)
        )

    async def _task_result(
        self, request: pb.TaskResultReport, context: Any
    ) -> pb.ReportTaskResultResponse:
        identity = await self.c.identities.of_call(context)
        await record_task_result(self.c, identity, request)
        return pb.ReportTaskResultResponse(success=True)

    async def ReportTaskOutput(
        self, request: pb.TaskOutputReport, context: Any
    ) -> pb.ReportTaskOutputResponse:
        return await self._unary(
            "ReportTaskOutput", context, lambda: self._task_output(request, context)
        )

    async def _task_output(
        self, request: pb.TaskOutputReport, context: Any
    ) -> pb.ReportTaskOutputResponse:
        identity = await self.c.identities.of_call(context)
        await record_task_output(self.c, identity, request)
        return pb.ReportTaskOutputResponse(success=True)

    # -- SubscribeUpdates -------------------------------------------------------------------
    async def SubscribeUpdates(
        self, request: pb.SubscribeRequest, context: Any
    ) -> AsyncIterator[pb.UpdateEvent]:
        try:
            identity = await self.c.identities.of_call(context)
            check_names_self(identity, request.node_uuid)
        except DomainError as error:
            await self._abort("SubscribeUpdates", context, error)
            return
        async with self._held(identity, "subscribe", context) as wake:
            # Headers now: the daemon can tell its stream is held before any event arrives.
            await context.send_initial_metadata(())
            while True:
                wake.clear()
                commands = await take_commands(
                    self.c, identity, reports_back=False, via="subscribe"
                )
                for command in commands:
                    yield convert.update_event(command)
                await wait_or_poll(wake)
                if self.c.closing.is_set():
                    await context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
                if not await still_enrolled(self.c, identity):
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, NODE_GONE)

    @contextlib.asynccontextmanager
    async def _held(
        self, identity: NodeIdentity, kind: str, context: Any
    ) -> AsyncIterator[asyncio.Event]:
        if self.c.closing.is_set():
            await context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
        wake = self.c.bus.subscribe(identity.node_id)
        await self.c.streams.open(identity.node_id)
        gauge = self.c.runtime.metrics.grpc_streams.labels(kind=kind)
        gauge.inc()
        try:
            yield wake
        finally:
            gauge.dec()
            self.c.bus.unsubscribe(identity.node_id, wake)
            await self.c.streams.close(identity.node_id)

    # -- Connect ----------------------------------------------------------------------------
    async def Connect(
        self, request_iterator: AsyncIterator[pb.DaemonMessage], context: Any
    ) -> AsyncIterator[pb.ManagerMessage]:
        try:
            identity = await self.c.identities.of_call(context)
        except DomainError as error:
            await self._abort("Connect", context, error)
            return
        session = ConnectSession(self.c, identity, context)
        async with self._held(identity, "connect", context) as wake:
            async for message in session.run(request_iterator, wake):
                yield message


class ConnectSession:
    """One daemon's Connect stream: reports in, cumulative acks and commands out."""

    def __init__(self, channel: Channel, identity: NodeIdentity, context: Any) -> None:
        self.c = channel
        self.identity = identity
        self.context = context
        self.out: asyncio.Queue[pb.ManagerMessage | None] = asyncio.Queue()
        self.pending: deque[tuple[int, asyncio.Future[None]]] = deque()
        self.progress = asyncio.Event()
        # Update reports are applied in the order they were sent: each is a step of a state
        # machine, where other reports may be handled side by side.
        self._last_update: asyncio.Future[None] | None = None
        self._last_task: asyncio.Future[None] | None = None  # task results, likewise
        # Commands written to this stream and not acknowledged yet: only they make it look at
        # the outbox again when they would be due for redelivery.
        self._unacknowledged: set[str] = set()

    async def run(
        self, requests: AsyncIterator[pb.DaemonMessage], wake: asyncio.Event
    ) -> AsyncIterator[pb.ManagerMessage]:
        reader = asyncio.create_task(self._read(requests))
        tasks = [
            reader,
            asyncio.create_task(self._acknowledge()),
            asyncio.create_task(self._push_commands(wake)),
            asyncio.create_task(self._stop_reading_on_shutdown(reader)),
        ]
        try:
            while (message := await self.out.get()) is not None:
                if message is GONE:
                    await self.context.abort(grpc.StatusCode.UNAUTHENTICATED, NODE_GONE)
                yield message
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.c.closing.is_set():  # everything read is answered: the daemon may go
            await self.context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)

    async def _stop_reading_on_shutdown(self, reader: asyncio.Task[None]) -> None:
        """On shutdown read nothing more; what was read is still committed and acknowledged."""
        await self.c.closing.wait()
        reader.cancel()

    async def _read(self, requests: AsyncIterator[pb.DaemonMessage]) -> None:
        try:
            async for message in requests:
                self.pending.append((message.seq, self._handle(message)))
                self.progress.set()
        finally:
            # The daemon closed its side: answer what is in flight, then end the stream.
            self.pending.append((-1, asyncio.get_running_loop().create_future()))
            self.pending[-1][1].set_result(None)
            self.progress.set()

    def _handle(self, message: pb.DaemonMessage) -> asyncio.Future[None]:
        """Start handling one message; its future resolves when it is committed or refused."""
        loop = asyncio.get_running_loop()
        try:
            convert.check_text(message)
            kind = message.WhichOneof("body")
            if kind == "heartbeat":
                check_names_self(self.identity, message.heartbeat.node_uuid)
                report = ingest_service.heartbeat_report(self.identity.node_id, message.heartbeat)
                return self.c.flusher.submit(report)
            if kind == "metrics":
                check_names_self(self.identity, message.metrics.node_uuid)
                report = ingest_service.metric_report(
                    self.identity.node_id, message.metrics, self.c.settings
                )
                return self.c.flusher.submit(report)
            if kind == "command_ack":
                return loop.create_task(self._command_ack(message.command_ack))
            if kind == "update_status":
                after = self._last_update
                self._last_update = loop.create_task(
                    self._update_status(message.update_status, after)
                )
                return self._last_update
            if kind == "task_result":
                after = self._last_task
                self._last_task = loop.create_task(self._task_result(message.task_result, after))
                return self._last_task
            if kind == "task_output":  # in the same line as the results, in order
                after = self._last_task
                self._last_task = loop.create_task(self._task_output(message.task_output, after))
                return self._last_task
            raise InvalidArgument(
                "a message needs a heartbeat, metrics, command_ack, update_status, task_result "
                "or task_output"
            )
        except DomainError as error:
            failed: asyncio.Future[None] = loop.create_future()
            failed.set_exception(error)
            return failed

    async def _update_status(
        self, report: pb.UpdateStatusReport, after: asyncio.Future[None] | None
    ) -> None:
        if after is not None:
            await asyncio.wait([after])  # its outcome is its own message's
        await record_update_status(self.c, self.identity, report)

    async def _task_result(
        self, report: pb.TaskResultReport, after: asyncio.Future[None] | None
    ) -> None:
        if after is not None:
            await asyncio.wait([after])
        await record_task_result(self.c, self.identity, report)

    async def _task_output(
        self, report: pb.TaskOutputReport, after: asyncio.Future[None] | None
    ) -> None:
        if after is not None:
            await asyncio.wait([after])
        await record_task_output(self.c, self.identity, report)

    async def _command_ack(self, ack: pb.CommandAck) -> None:
        outcomes = convert.outcomes(ack.command_ids, ack.results)
        async with transaction(self.c.runtime.sessions) as session:
            await command_service.settle(session, self.identity.node_id, outcomes)
        self._unacknowledged.difference_update(outcomes)

    async def _acknowledge(self) -> None:
        """Send one cumulative ack for every run of finished messages, in order."""
        while True:
            await self.progress.wait()
            self.progress.clear()
            while self.pending:
                seq, future = self.pending[0]
                if seq == -1:
                    await self.out.put(None)
                    return
                with contextlib.suppress(Exception):
                    await asyncio.shield(future)
                if isinstance(future.exception(), NodeGone):
                    await self.out.put(GONE)
                    return
                ack = pb.StreamAck()
                while self.pending and self.pending[0][1].done() and self.pending[0][0] != -1:
                    seq, future = self.pending.popleft()
                    ack.seq = seq
                    refusal = _refusal(seq, future)
                    if refusal is not None:
                        ack.refused.append(refusal)
                count(self.c, "Connect.report", grpc.StatusCode.OK)
                await self.out.put(pb.ManagerMessage(ack=ack))

    async def _push_commands(self, wake: asyncio.Event) -> None:
        while True:
            wake.clear()
            commands = await take_commands(self.c, self.identity, reports_back=True, via="connect")
            for command in commands:
                await self.out.put(pb.ManagerMessage(command=convert.command_message(command)))
            if commands:  # look again when they are due for redelivery, unless acknowledged
                ids = [command.id for command in commands]
                self._unacknowledged.update(ids)
                redeliver = command_service.REDELIVER_AFTER.total_seconds() + 1
                loop = asyncio.get_running_loop()
                loop.call_later(max(redeliver, 0), self._due_again, ids, wake)
            await wait_or_poll(wake)
            if not await still_enrolled(self.c, self.identity):
                await self.out.put(GONE)
                return

    def _due_again(self, ids: list[str], wake: asyncio.Event) -> None:
        """Commands written a while ago would be due for redelivery: look at the outbox
        again, unless the daemon has acknowledged all of them (one read saved per command,
        for every node of a rollout's wave)."""
        if self._unacknowledged.intersection(ids):
            wake.set()


def _refusal(seq: int, future: asyncio.Future[None]) -> pb.Refusal | None:
    error = future.exception()
    if error is None:
        return None
    if isinstance(error, DomainError):
        return pb.Refusal(seq=seq, code=error.grpc_status.name, message=error.message)
    busy = IngestBusy()
    return pb.Refusal(seq=seq, code=busy.grpc_status.name, message=busy.message)
