"""The daemon: one node's session with the Manager, real metrics, and the supervised Agent.

`await Daemon(config).run()` runs until cancelled (the agent is stopped on the way out) or
until the Manager refuses the node's identity (Fatal).
"""

from __future__ import annotations

import asyncio
import logging
import os

from opscaffold.daemon import package_version
from opscaffold.daemon.agent.tasks import TASK_DIR_ENV, AgentTaskSettings
from opscaffold.daemon.commands import CommandError, Intervals
from opscaffold.daemon.config import ConfigError, DaemonConfig
from opscaffold.daemon.host import register_request
from opscaffold.daemon.link import open_channel, parse_target, stub
from opscaffold.daemon.metrics import MetricsSampler
from opscaffold.daemon.orders import command_error, parse_order, status_report
from opscaffold.daemon.session import Identity, NodeSession, SessionSettings
from opscaffold.daemon.state import NodeState, StateStore
from opscaffold.daemon.supervisor import AgentSupervisor
from opscaffold.daemon.taskrelay import AgentTasks, TaskKeyError, TaskKeyStore, prepare_agent_dir
from opscaffold.daemon.trust import TrustedKeyError, TrustStore
from opscaffold.daemon.updater import AgentHooks, Updater, UpdaterSettings
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.update import UpdateState

log = logging.getLogger(__name__)
EXEC_FLUSH_S = 5.0  # how long a re-executing daemon waits for its update states to be taken
AGENT_DIR = "agent"  # under state_dir: the Agent's pinned key, local token and journal


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.store = StateStore(config.state_dir)
        # The Agent finds its task directory in its environment: an agent of an older package,
        # which knows no such setting, still starts.
        self.supervisor = AgentSupervisor(
            [],
            version=package_version(),
            stop_grace=config.agent_stop_grace,
            env={**os.environ, TASK_DIR_ENV: str((config.state_dir / AGENT_DIR).resolve())},
        )
        self.updater = Updater(
            config.state_dir,
            AgentHooks(self.supervisor, agent_arguments(config), agent_health_url(config)),
            self._node_token,
            UpdaterSettings(
                keep_versions=config.keep_versions, health_timeout=config.update_health_timeout
            ),
            before_exec=self._before_exec,
        )
        # The agent of the installed package, if any; else the one beside this daemon.
        self.supervisor.replace(*self.updater.agent_launch())
        self._agent_task: asyncio.Task[None] | None = None
        self.session: NodeSession | None = None  # set by run(); tests and probes read it
        self._sampler: MetricsSampler | None = None
        self._state: NodeState | None = None  # what is on disk, once loaded
        self.task_keys = TaskKeyStore(config.state_dir / AGENT_DIR)
        self.tasks: AgentTasks | None = None  # set by run()

    async def run(self) -> None:
        state = self.store.load_or_create(self.config.uuid)
        self._state = state
        try:
            TrustStore(self.config.state_dir).install(self.config.trusted_keys)
        except TrustedKeyError as exc:
            raise ConfigError(str(exc)) from exc
        if self.config.manager_key is not None:
            try:
                self.task_keys.pin(self.config.manager_key.read_bytes())
            except (OSError, TaskKeyError) as exc:
                raise ConfigError(f"manager_key: {exc}") from exc
        local_token = prepare_agent_dir(
            self.task_keys.task_dir,
            state.uuid,
            AgentTaskSettings(
                output_cap=self.config.task_output_cap,
                file_dirs=[str(p.resolve()) for p in self.config.task_file_dirs],
            ),
        )
        self.tasks = AgentTasks(
            agent_base_url(self.config), local_token, self._report_task, self._report_output
        )
        settled = self.updater.confirm_started()
        for outcome in settled:
            update = outcome.state
            log.info("update %d: %s %s", update.record_id, update.status, update.message)
        # Only after confirm_started, which switches away from a daemon that did not stay up.
        self.updater.start_installed_daemon()
        identity = Identity(
            state.uuid,
            state.node_id,
            None if self.config.re_enroll else state.node_token,
            state.enrollment_key,
        )
        token = self.config.enrollment_token
        if identity.node_token is None and token is None and not self.config.mutual_tls:
            raise ConfigError(
                f"no node token in {self.store.path} and no enrollment token given: "
                "pass --enrollment-token for the first registration"
            )
        try:
            channel = open_channel(self.config.manager, self.config.tls.files())
        except OSError as exc:
            raise ConfigError(f"cannot read the TLS files: {exc}") from exc
        self._sampler = MetricsSampler()
        self.session = NodeSession(stub(channel), self, identity, self._settings())
        for outcome in settled:  # an update that re-executed this daemon: its last states
            verifying = outcome.state.model_copy(update={"status": "verifying", "message": ""})
            for step in (verifying, outcome.state):  # verifying again is a harmless resend
                self.session.outbox.put_update(status_report(step, outcome.version))
            if outcome.command_id is not None:
                self.session.command_done(outcome.command_id, command_error(outcome.state))
        agent = asyncio.create_task(self.supervisor.run(), name="agent-supervisor")
        self._agent_task = agent
        log.info(
            "daemon %s, node %s, manager %s", package_version(), state.uuid, self.config.manager
        )
        try:
            # The first heartbeat should describe a started agent, not the moment before.
            await self.supervisor.first_attempt.wait()
            await self.session.run()
        finally:
            agent.cancel()
            await asyncio.gather(agent, return_exceptions=True)
            await channel.close()

    def _settings(self) -> SessionSettings:
        config = self.config
        token = config.enrollment_token
        return SessionSettings(
            transport=config.transport,
            enrollment_token=token.get_secret_value() if token else None,
            intervals=Intervals(config.heartbeat_interval, config.metric_interval),
            jitter=config.jitter,
            call_timeout=config.call_timeout,
            ack_timeout=config.ack_timeout,
            backoff_cap=config.backoff_cap,
            capacity=config.buffer_size,
        )

    # ---- NodeOwner -----------------------------------------------------------------------

    async def register_request(self) -> pb.RegisterRequest:
        host, port = parse_target(self.config.manager)
        return await asyncio.to_thread(
            register_request, host, port, self.config.agent_port, self.config.labels
        )

    async def agent_status(self) -> pb.AgentStatus:
        return self.supervisor.snapshot().message()

    async def metrics(self) -> pb.NodeMetrics:
        assert self._sampler is not None
        return await asyncio.to_thread(self._sampler.sample)

    async def on_command(self, command: pb.Command) -> None:
        if command.type == "restart":
            log.info("command %s: restarting the agent", command.id)
            self.supervisor.request_restart()
        elif command.type == "update":
            await self._update(command)
        elif command.type == "task":
            assert self.tasks is not None
            await self.tasks.carry_out(command.payload)
        elif command.type == "task_cancel":
            assert self.tasks is not None
            await self.tasks.cancel(command.payload)
        elif command.type not in ("ping", "config"):
            raise CommandError(f"unknown command type {command.type!r}")

    async def _update(self, command: pb.Command) -> None:
        """Carry out an update order; its final state is the command's result."""
        order = parse_order(command.payload)

        async def report(state: UpdateState) -> None:
            # Each state goes to the Manager's update record; the final one is also the
            # command's result.
            level = logging.DEBUG if state.status == "downloading" else logging.INFO
            log.log(
                level,
                "update %d: %s %d%% %s",
                state.record_id,
                state.status,
                state.progress,
                state.message,
            )
            if self.session is not None:
                self.session.outbox.put_update(status_report(state, order.manifest.version))

        final = await self.updater.apply(order, report, command_id=command.id)
        if (error := command_error(final)) is not None:
            raise CommandError(error)

    async def _before_exec(self) -> None:
        """Before re-executing: the Manager has the update's states so far (briefly waited
        for), and the new daemon starts its own agent on the same port."""
        if self.session is not None:
            await self.session.outbox.wait_updates_settled(EXEC_FLUSH_S)
        await self._stop_agent()

    async def _stop_agent(self) -> None:
        """The new daemon starts its own agent on the same port."""
        if self._agent_task is not None:
            self._agent_task.cancel()
            await asyncio.gather(self._agent_task, return_exceptions=True)

    def _report_task(self, report: pb.TaskResultReport) -> None:
        log.log(
            logging.DEBUG if report.status == "running" else logging.INFO,
            "task %s: %s %s",
            report.execution_id,
            report.status,
            report.error,
        )
        if self.session is not None:
            self.session.outbox.put_task_result(report)

    def _report_output(self, part: pb.TaskOutputReport) -> None:
        if self.session is not None:
            self.session.outbox.put_task_output(part)

    def task_key_offered(self, pem: bytes) -> None:
        self.task_keys.offer(pem)

    def _node_token(self) -> str | None:
        return self._state.node_token if self._state is not None else None

    def identity_changed(self, identity: Identity) -> None:
        assert self._state is not None
        self._state = self._state.model_copy(
            update={"node_id": identity.node_id, "node_token": identity.node_token}
        )
        self.store.save(self._state)


def agent_arguments(config: DaemonConfig) -> list[str]:
    """What follows the agent's entry point on its command line, whichever installation it
    runs from."""
    return [
        "--port",
        str(config.agent_port),
        "--host",
        config.agent_host,
        "--log-level",
        config.log_level,
        "--parent-pid",
        str(os.getpid()),
    ]


def agent_base_url(config: DaemonConfig) -> str:
    wildcard = config.agent_host in ("0.0.0.0", "::", "")
    host = "127.0.0.1" if wildcard else config.agent_host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.agent_port}"


def agent_health_url(config: DaemonConfig) -> str:
    return f"{agent_base_url(config)}/health"
