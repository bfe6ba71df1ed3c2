"""A virtual node: plausible hardware, metrics that wander like a real machine's, an agent
status (there is no agent process), and update orders walked through their states without
installing anything. Deterministic per uuid, so a node looks the same each run."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid as uuid_lib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opscaffold.daemon import package_version
from opscaffold.daemon.session import Identity
from opscaffold.fleet.tasks import NodeTasks, TaskBehaviour, TaskCounts
from opscaffold.fleet.updates import NodeUpdates, UpdateBehaviour, UpdateCounts
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb

if TYPE_CHECKING:
    from opscaffold.daemon.session import NodeSession

log = logging.getLogger(__name__)
GIB = 1024**3
MIB = 1024**2
# The fields of a report a node's metrics may be pinned to (all but its timestamp).
PINNABLE = frozenset(
    field.name for field in pb.NodeMetrics.DESCRIPTOR.fields if field.name != "timestamp"
)


def check_pins(values: Mapping[str, float]) -> dict[str, float]:
    """The pins as given, once each names a report field; raises ValueError otherwise."""
    if unknown := sorted(set(values) - PINNABLE):
        raise ValueError(
            f"unknown metric {', '.join(unknown)}; one of {', '.join(sorted(PINNABLE))}"
        )
    return dict(values)


def _wander(rng: random.Random, value: float, step: float, low: float, high: float) -> float:
    return min(high, max(low, value + rng.gauss(0, step)))


class VirtualNode:
    def __init__(
        self,
        index: int,
        identity: Identity,
        on_identity: Callable[[Identity], None],
        *,
        updates: UpdateBehaviour | None = None,
        counts: UpdateCounts | None = None,
        on_daemon_installed: Callable[[], None] | None = None,
        tasks: TaskBehaviour | None = None,
        task_counts: TaskCounts | None = None,
    ) -> None:
        self.index = index
        self.identity = identity
        self._on_identity = on_identity
        self._update_behaviour = updates or UpdateBehaviour()
        self._update_counts = counts or UpdateCounts()
        self._on_daemon_installed = on_daemon_installed
        self._updates: NodeUpdates | None = None  # made by the first update order
        self.tasks = NodeTasks(
            index, identity.uuid, tasks or TaskBehaviour(), task_counts or TaskCounts()
        )
        self.session: NodeSession | None = None  # the session reporting for this node
        self.versions = {"daemon": package_version(), "agent": package_version()}
        self._rng = random.Random(uuid_lib.UUID(identity.uuid).int)  # noqa: S311 - simulation
        rng = self._rng
        self.cpu_cores = rng.choice((2, 4, 8, 16, 32))
        self.memory_total = self.cpu_cores * rng.choice((2, 4, 8)) * GIB
        self.disk_total = rng.choice((50, 100, 200, 500)) * GIB
        self._cpu = rng.uniform(5, 60)
        self._memory = rng.uniform(20, 80)
        self._disk = rng.uniform(10, 70)
        self._rx = rng.uniform(10e3, 5e6)
        self._processes = rng.uniform(120, 400)
        self._tcp = rng.uniform(10, 400)
        self.restart_count = 0
        self._agent_pid = rng.randint(1000, 60000)
        self._agent_started = int(time.time())
        self.pinned: dict[str, float] = {}  # fields reported as set here, not wandering

    def pin_metrics(self, values: Mapping[str, float]) -> None:
        """Report these fields with these values from the next report on (a scenario: a
        node's CPU goes high, then back); an empty mapping lets every field wander again."""
        self.pinned = check_pins(values)

    async def register_request(self) -> pb.RegisterRequest:
        i = self.index
        return pb.RegisterRequest(
            hostname=f"fleet-{i:06d}",
            ip=f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
            port=9100,
            os="linux",
            arch="amd64",
            kernel_version="6.1.0-fleet",
            daemon_version=self.versions["daemon"],
            cpu_cores=self.cpu_cores,
            memory_total=self.memory_total,
            disk_total=self.disk_total,
            labels={"fleet": "simulated"},
        )

    async def agent_status(self) -> pb.AgentStatus:
        return pb.AgentStatus(
            version=self.versions["agent"],
            status="running",
            pid=self._agent_pid,
            cpu_usage=round(self._rng.uniform(0.1, 3.0), 2),
            memory_usage=self._rng.randint(30, 90) * MIB,
            start_time=self._agent_started,
            restart_count=self.restart_count,
        )

    async def metrics(self) -> pb.NodeMetrics:
        rng = self._rng
        self._cpu = _wander(rng, self._cpu, 6, 0.5, 99.5)
        self._memory = _wander(rng, self._memory, 2, 5, 97)
        self._disk = min(99.0, self._disk + abs(rng.gauss(0, 0.02)))  # disks fill, slowly
        self._rx = _wander(rng, self._rx, self._rx * 0.2, 1e3, 100e6)
        self._processes = _wander(rng, self._processes, 5, 60, 2000)
        self._tcp = _wander(rng, self._tcp, 10, 0, 20000)
        load = self._cpu / 100 * self.cpu_cores
        report = pb.NodeMetrics(
            cpu_usage=round(self._cpu, 2),
            memory_usage=round(self._memory, 2),
            memory_used=int(self.memory_total * self._memory / 100),
            disk_usage=round(self._disk, 2),
            disk_used=int(self.disk_total * self._disk / 100),
            network_rx=int(self._rx),
            network_tx=int(self._rx * rng.uniform(0.3, 1.2)),
            load_avg_1=round(load * rng.uniform(0.8, 1.2), 2),
            load_avg_5=round(load, 2),
            load_avg_15=round(load * rng.uniform(0.9, 1.05), 2),
            process_count=int(self._processes),
            tcp_connections=int(self._tcp),
        )
        for name, value in self.pinned.items():
            field = pb.NodeMetrics.DESCRIPTOR.fields_by_name[name]
            is_float = field.type == field.TYPE_DOUBLE
            setattr(report, name, float(value) if is_float else int(value))
        return report

    async def on_command(self, command: pb.Command) -> None:
        if command.type == "restart":
            self.restart_count += 1
            self._start_agent()
        elif command.type == "update":
            await self._orders().carry_out(command)
        elif command.type == "task":
            self.tasks.session = self.session
            await self.tasks.carry_out(command.payload)
        elif command.type == "task_cancel":
            await self.tasks.cancel(command.payload)

    def _orders(self) -> NodeUpdates:
        if self._updates is None:
            self._updates = NodeUpdates(
                self.index,
                self._update_behaviour,
                self.versions,
                self._installed,
                self._update_counts,
            )
            self._updates.session = self.session
        return self._updates

    def stop_updates(self) -> list[asyncio.Task[Any]]:
        return self._updates.stop() if self._updates is not None else []

    def _installed(self, component: str, version: str) -> None:
        """A new version runs: the agent restarts (its next heartbeat names the version); the
        daemon starts again as the new one, which registers with its version."""
        log.debug("node %d: %s %s installed", self.index, component, version)
        if component == "agent":
            self._start_agent()
        elif self._on_daemon_installed is not None:
            self._on_daemon_installed()

    def _start_agent(self) -> None:
        self._agent_pid = self._rng.randint(1000, 60000)
        self._agent_started = int(time.time())

    def identity_changed(self, identity: Identity) -> None:
        self._on_identity(identity)

    def task_key_offered(self, pem: bytes) -> None:
        self.tasks.offer_key(pem)
