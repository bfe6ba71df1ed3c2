"""The Agent as a child process of the daemon: started, watched, restarted when it dies, and
described in every heartbeat (real pid, cpu, memory, start time, restarts, last error)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil

from opscaffold.daemon.backoff import Backoff
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.text import wire_text

log = logging.getLogger(__name__)
agent_log = logging.getLogger("opscaffold.daemon.agent.output")
STDERR_TAIL = 500  # characters of the agent's last stderr line kept for last_error


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    version: str
    status: str  # running, stopped, error
    pid: int
    cpu_usage: float
    memory_usage: int
    start_time: int  # Unix seconds
    restart_count: int
    last_error: str

    def message(self) -> pb.AgentStatus:
        return pb.AgentStatus(
            version=self.version,
            status=self.status,
            pid=self.pid,
            cpu_usage=self.cpu_usage,
            memory_usage=self.memory_usage,
            start_time=self.start_time,
            restart_count=self.restart_count,
            last_error=self.last_error,
        )


class AgentSupervisor:
    def __init__(
        self,
        command: Sequence[str],
        *,
        version: str,
        stop_grace: float = 5.0,
        backoff: Backoff | None = None,
        stable_after: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.version = version
        self.env = dict(env) if env is not None else None  # None: the daemon's own
        self.stop_grace = stop_grace
        self.restart_count = 0
        self.starts = 0  # agent processes started so far: which one a pid belongs to
        self.last_error = ""
        # A local child has no herd to spread, so delays are plain doubling, no jitter.
        self._backoff = backoff or Backoff(0.5, 30.0, full_jitter=False)
        self._stable_after = stable_after  # an agent up this long has recovered: reset backoff
        self._status = "stopped"
        self._process: asyncio.subprocess.Process | None = None
        self._probe: psutil.Process | None = None
        self._start_time = 0
        self._restart_requested = asyncio.Event()
        self.first_attempt = asyncio.Event()  # set once the first start was tried

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def run(self) -> None:
        """Keep the agent running until cancelled; cancelling stops it (SIGTERM, then SIGKILL
        after the grace period)."""
        try:
            while True:
                spawned = await self._spawn()
                self.first_attempt.set()
                if spawned:
                    await self._watch()
                if not self._restart_requested.is_set():
                    await self._pause()
                self._restart_requested.clear()
        finally:
            self._status = "stopped"
            await self._terminate()

    def replace(self, command: Sequence[str], version: str) -> None:
        """Start `command` (reporting `version`) from the next start on: an installed
        package's agent. The running agent keeps going until restarted."""
        self.command = list(command)
        self.version = version

    def request_restart(self) -> None:
        """Restart the agent now (the `restart` command); counted as a restart."""
        self._restart_requested.set()

    def snapshot(self) -> AgentSnapshot:
        cpu, memory = self._usage()
        return AgentSnapshot(
            version=self.version,
            status=self._status,
            pid=(self.pid or 0) if self._status == "running" else 0,
            cpu_usage=cpu,
            memory_usage=memory,
            start_time=self._start_time,
            restart_count=self.restart_count,
            last_error=self.last_error,
        )

    async def _spawn(self) -> bool:
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                # Its own process group: a Ctrl-C meant for the daemon does not reach it, and
                # a stop can kill everything it started.
                start_new_session=True,
                env=self.env,
            )
        except OSError as exc:
            self._failed(f"could not start the agent: {exc}")
            return False
        self._process = process
        self.starts += 1
        try:
            self._probe = psutil.Process(process.pid)
            self._probe.cpu_percent(interval=None)  # the first reading only primes the counter
            self._start_time = int(self._probe.create_time())
        except psutil.Error:  # gone already; the watcher reports how it ended
            self._probe, self._start_time = None, int(time.time())
        self._status = "running"
        log.info("agent started, pid %d", process.pid)
        return True

    async def _watch(self) -> None:
        """Until the agent exits or a restart is requested; then it is not running."""
        process = self._process
        assert process is not None
        started = time.monotonic()
        stderr = asyncio.create_task(self._read_stderr(process))
        try:
            exited = await self._exit_or_restart(process)
            if not exited:
                log.info("restarting the agent on request")
                await self._terminate()
            tail = await _finished(stderr)
        finally:
            stderr.cancel()
        self.restart_count += 1
        self._process = self._probe = None
        self._status = "stopped"
        if not exited or time.monotonic() - started >= self._stable_after:
            self._backoff.reset()
        if exited:
            self._failed(_exit_reason(process.returncode, tail))

    async def _exit_or_restart(self, process: asyncio.subprocess.Process) -> bool:
        """True when the agent exited, False when a restart was requested first."""
        exited = asyncio.create_task(process.wait())
        restart = asyncio.create_task(self._restart_requested.wait())
        try:
            done, _ = await asyncio.wait({exited, restart}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
            restart.cancel()
        return exited in done

    def _failed(self, reason: str) -> None:
        self._status = "error"
        self.last_error = wire_text(reason)
        log.warning("agent: %s", reason)

    async def _pause(self) -> None:
        """The backoff delay before starting a failed agent again; a restart request ends
        it early."""
        delay = self._backoff.next()
        log.info("starting the agent again in %.1fs", delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._restart_requested.wait(), delay)

    async def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        try:
            process.terminate()
            await asyncio.wait_for(process.wait(), self.stop_grace)
        except TimeoutError:
            log.warning("agent did not stop within %gs; killing it", self.stop_grace)
        finally:
            # SIGKILL to the whole group: whatever the agent started goes with it. Also runs
            # when we are cancelled mid-wait, so no agent outlives the daemon.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        await process.wait()

    def _usage(self) -> tuple[float, int]:
        if self._probe is None or self._status != "running":
            return 0.0, 0
        try:
            with self._probe.oneshot():
                return self._probe.cpu_percent(interval=None), self._probe.memory_info().rss
        except psutil.Error:  # exited between our checks; the watcher will notice
            return 0.0, 0

    @staticmethod
    async def _read_stderr(process: asyncio.subprocess.Process) -> str:
        """Forward the agent's stderr to our log; return its last line."""
        assert process.stderr is not None
        last = ""
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                agent_log.info("%s", line)
                last = line
        return last[-STDERR_TAIL:]


async def _finished(stderr: asyncio.Task[str]) -> str:
    # Something the agent started may still hold its stderr open; do not wait for that.
    try:
        return await asyncio.wait_for(asyncio.shield(stderr), 1.0)
    except TimeoutError:
        stderr.cancel()
        return ""


def _exit_reason(code: int | None, tail: str) -> str:
    if code is not None and code < 0:
        reason = f"agent killed by {signal.Signals(-code).name}"
    else:
        reason = f"agent exited with code {code}"
    return f"{reason}: {tail}" if tail else reason
