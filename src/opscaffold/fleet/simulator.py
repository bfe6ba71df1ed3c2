"""N virtual daemons in one asyncio process against a real Manager.

All nodes share K gRPC channels (identity travels per call, in metadata): 50,000 connections
from one address would exhaust the ephemeral port range. Churn cancels a node's session, as if
its daemon restarted, and starts it again later; its unacknowledged reports are kept and resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import resource
import time
import uuid as uuid_lib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, field_validator

from opscaffold.daemon.commands import Intervals
from opscaffold.daemon.link import Fatal, TlsFiles, open_channel, parse_target, stub
from opscaffold.daemon.session import (
    DEFAULT_INTERVALS,
    Identity,
    NodeSession,
    SessionSettings,
    Stats,
    Transport,
)
from opscaffold.daemon.state import NodeState, write_private
from opscaffold.fleet.nodes import VirtualNode, check_pins
from opscaffold.fleet.tasks import TaskBehaviour, TaskCounts
from opscaffold.fleet.updates import UpdateBehaviour, UpdateCounts
from opscaffold.protocol.manifest import load_public_key

log = logging.getLogger(__name__)
SAVE_EVERY = 5.0  # seconds between state-file writes while tokens arrive
EXEC_FLUSH_S = 5.0  # how long a node that installed a new daemon waits for its states to go
NodeStates = TypeAdapter(list[NodeState])


class FleetError(Exception):
    pass


class FleetConfig(BaseModel):
    manager: str
    enrollment_token: str | None = None
    nodes: int = Field(ge=1)
    transport: Transport = "connect"
    heartbeat_interval: float | None = Field(None, ge=0.1)  # set: pinned, Manager ignored
    metric_interval: float | None = Field(None, ge=0.1)
    jitter: float = Field(0.1, ge=0, le=0.9)
    churn: float = Field(0.0, ge=0)  # fraction of nodes that disconnect per minute
    channels: int = Field(16, ge=1)
    duration: float | None = Field(None, gt=0)  # None: until interrupted
    ramp: float = Field(10.0, ge=0)  # seconds over which nodes start
    state_file: Path | None = None
    tls: TlsFiles | None = None
    update_failure_rate: float = Field(0.0, ge=0, le=1)  # share of updates failed or rolled back
    update_seconds: float = Field(5.0, ge=0)  # downloading to success, spread by jitter
    task_failure_rate: float = Field(0.0, ge=0, le=1)  # share of task executions that fail
    task_seconds: float = Field(1.0, ge=0)  # how long a task execution runs, spread by jitter
    seed: int | None = None  # set: each node's updates go the same way every run
    trusted_keys: list[Path] = Field(default_factory=list)  # set: signatures are checked
    # Report fields every node reports with a fixed value (e.g. cpu_usage=97), not wandering.
    pinned_metrics: dict[str, float] = Field(default_factory=dict)

    @field_validator("pinned_metrics")
    @classmethod
    def _known_fields(cls, value: dict[str, float]) -> dict[str, float]:
        return check_pins(value)

    @field_validator("manager")
    @classmethod
    def _target(cls, value: str) -> str:
        parse_target(value)
        return value

    def session_settings(self) -> SessionSettings:
        pinned = self.heartbeat_interval is not None or self.metric_interval is not None
        return SessionSettings(
            transport=self.transport,
            enrollment_token=self.enrollment_token,
            intervals=Intervals(
                self.heartbeat_interval or DEFAULT_INTERVALS.heartbeat,
                self.metric_interval or DEFAULT_INTERVALS.metrics,
            ),
            pin_intervals=pinned,
            jitter=self.jitter,
            stagger=True,  # nodes started together must not report in lockstep
        )

    def update_behaviour(self) -> UpdateBehaviour:
        """Raises FleetError when a trusted key cannot be read."""
        keys = []
        for path in self.trusted_keys:
            try:
                keys.append(load_public_key(path.read_bytes()))
            except (OSError, ValueError) as exc:
                raise FleetError(f"trusted key {path}: {exc}") from exc
        return UpdateBehaviour(
            failure_rate=self.update_failure_rate,
            seconds=self.update_seconds,
            jitter=self.jitter,
            seed=self.seed,
            trusted_keys=tuple(keys),
        )

    def task_behaviour(self) -> TaskBehaviour:
        return TaskBehaviour(
            failure_rate=self.task_failure_rate,
            seconds=self.task_seconds,
            jitter=self.jitter,
            seed=self.seed,
        )


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def load_states(path: Path | None, count: int) -> list[NodeState]:
    """Every node of the state file, plus new ones when it holds fewer than `count`."""
    states = NodeStates.validate_json(path.read_bytes()) if path and path.exists() else []
    states.extend(NodeState(uuid=str(uuid_lib.uuid4())) for _ in range(count - len(states)))
    return states


def save_states(path: Path, states: Iterable[NodeState]) -> None:
    write_private(path, NodeStates.dump_json(list(states), indent=1))


def percentile_ms(stats: Stats, q: float) -> float | None:
    value = stats.percentile(q)
    return None if value is None else round(value * 1000, 2)


class Fleet:
    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.stats = Stats()
        self.failed = 0
        self.churned = 0
        self._states = load_states(config.state_file, config.nodes)
        unenrolled = sum(1 for s in self._states[: config.nodes] if s.node_token is None)
        if unenrolled and config.enrollment_token is None:
            raise FleetError(f"{unenrolled} nodes have no token yet: give an enrollment token")
        self._dirty = True  # new nodes must keep their uuids even if none registers
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._restarts: set[asyncio.Task[None]] = set()
        self._started = time.monotonic()
        self._updates = config.update_behaviour()
        self.update_counts = UpdateCounts()
        self._task_behaviour = config.task_behaviour()
        self.task_counts = TaskCounts()
        self.nodes: list[VirtualNode] = []
        self.sessions: list[NodeSession] = []

    async def run(self) -> dict[str, Any]:
        """Run until the duration ends (or cancelled), then return the summary."""
        raise_open_files_limit()
        channels = [
            open_channel(self.config.manager, self.config.tls, own_connection=True)
            for _ in range(self.config.channels)
        ]
        self._build_sessions(channels)
        self._started = time.monotonic()
        helpers = [asyncio.create_task(self._churn()), asyncio.create_task(self._save_loop())]
        try:
            self._start_all()
            await asyncio.sleep(self.config.duration or float("inf"))
        finally:
            updates = [task for node in self.nodes for task in node.stop_updates()]
            tasks = [*helpers, *self._restarts, *self._tasks.values(), *updates]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._save()
            await asyncio.gather(*(c.close() for c in channels))
        return self.summary()

    def pin_metrics(self, values: Mapping[str, float], nodes: Iterable[int] | None = None) -> None:
        """From their next report on, the nodes (indexes; all by default) report these fields
        with these values; an empty mapping lets their metrics wander again."""
        pins = check_pins(values)
        for index in range(len(self.nodes)) if nodes is None else nodes:
            self.nodes[index].pin_metrics(pins)

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _build_sessions(self, channels: list[Any]) -> None:
        settings = self.config.session_settings()
        stubs = [stub(c) for c in channels]
        for index, state in enumerate(self._states[: self.config.nodes]):
            identity = Identity(state.uuid, state.node_id, state.node_token, state.enrollment_key)
            node = VirtualNode(
                index,
                identity,
                functools.partial(self._remember, index),
                updates=self._updates,
                counts=self.update_counts,
                on_daemon_installed=functools.partial(self._reexecute, index),
                tasks=self._task_behaviour,
                task_counts=self.task_counts,
            )
            session = NodeSession(stubs[index % len(stubs)], node, identity, settings, self.stats)
            node.session = session
            node.pin_metrics(self.config.pinned_metrics)
            self.nodes.append(node)
            self.sessions.append(session)

    def _start_all(self) -> None:
        spacing = self.config.ramp / len(self.sessions)
        for index in range(len(self.sessions)):
            self._start(index, index * spacing)

    def _start(self, index: int, delay: float) -> None:
        self._tasks[index] = asyncio.create_task(self._live(index, delay))

    async def _live(self, index: int, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self.sessions[index].run()
        except Fatal as exc:
            self.failed += 1
            log.error("node %d stopped: %s", index, exc)
        except Exception:
            # A session retries every transport error itself; one that ends anyway is a
            # node lost to the run, and must show in the summary.
            self.failed += 1
            log.exception("node %d stopped unexpectedly", index)

    async def _churn(self) -> None:
        """Every second, about churn × nodes / 60 running nodes drop out and come back after
        up to two heartbeat intervals."""
        rate = self.config.churn * len(self.sessions) / 60
        while rate > 0:
            await asyncio.sleep(1.0)
            count = int(rate) + (random.random() < rate - int(rate))  # noqa: S311
            running = [i for i, t in self._tasks.items() if not t.done()]
            for index in random.sample(running, min(count, len(running))):
                self._tasks[index].cancel()
                away = random.uniform(1, 2 * self.sessions[index].intervals.heartbeat)  # noqa: S311
                self._start(index, away)
                self.churned += 1

    def _reexecute(self, index: int) -> None:
        """A node installed a new daemon: once its update states are taken, its session ends
        as the old process would and a new one starts, which registers with the new version."""
        task = asyncio.create_task(self._restart(index))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart(self, index: int) -> None:
        await self.sessions[index].outbox.wait_updates_settled(EXEC_FLUSH_S)
        old = self._tasks[index]
        old.cancel()
        await asyncio.gather(old, return_exceptions=True)
        if self._tasks[index] is old:  # churn did not restart it meanwhile
            self._start(index, 0)

    def _remember(self, index: int, identity: Identity) -> None:
        self._states[index] = self._states[index].model_copy(
            update={"node_id": identity.node_id, "node_token": identity.node_token}
        )
        self._dirty = True

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(SAVE_EVERY)
            self._save()

    def _save(self) -> None:
        if self.config.state_file is not None and self._dirty:
            save_states(self.config.state_file, self._states)
            self._dirty = False

    def summary(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "nodes": len(self.sessions),
            "transport": self.config.transport,
            "channels": self.config.channels,
            "duration_s": round(self.elapsed(), 1),
            "registered_nodes": sum(1 for s in self.sessions if s.identity.node_id is not None),
            "registrations": stats.registrations,
            "reports": {
                "sent": stats.sent,
                "acknowledged": stats.acknowledged,
                "acknowledged_metrics": stats.acknowledged_metrics,
                "refused": dict(stats.refused),
                "dropped_buffer_full": sum(s.outbox.dropped for s in self.sessions),
                "metrics_unacknowledged_at_end": sum(
                    s.outbox.metrics_held() for s in self.sessions
                ),
            },
            "latency_to_ack_ms": {
                "p50": percentile_ms(stats, 50),
                "p99": percentile_ms(stats, 99),
            },
            "errors": dict(stats.errors),
            "commands": stats.commands,
            "updates": dict(self.update_counts.finals),
            "tasks": dict(self.task_counts.finals),
            "churned": self.churned,
            "failed_nodes": self.failed,
        }


def dumps(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=False)
