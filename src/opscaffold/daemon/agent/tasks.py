"""The Agent's tasks: accept a signed envelope once, run it, keep its result for the daemon.

Checks before anything runs: the signature is the pinned Manager key's (the file
`manager-task-key.pem` in the task directory; no key, no tasks), the envelope names this node,
and it is not past `not_after`. Each execution id is claimed by creating its journal file
with O_EXCL, so a replayed envelope (same id) is refused even across Agent restarts. The
result is written to that file, where the daemon reads it (GET /tasks/{id}).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BaseModel, ConfigDict, Field

from opscaffold.daemon.agent import executors
from opscaffold.daemon.agent.executors import Cancel, Limits, Outcome, TaskFailed
from opscaffold.daemon.agent.output import MAX_PART, LiveOutput, OutputPart
from opscaffold.protocol.task import (
    CustomContent,
    Envelope,
    EnvelopeBody,
    EnvelopeRefused,
    FileContent,
    ScriptContent,
    ServiceContent,
    TaskResult,
    load_public_key,
    open_envelope,
)

log = logging.getLogger(__name__)
KEY_FILE = "manager-task-key.pem"
TOKEN_FILE = "local-token"  # noqa: S105 - a file name
NODE_FILE = "node-uuid"  # written by the daemon, unless the Agent is told with --node-uuid
SETTINGS_FILE = "settings.json"  # AgentTaskSettings, written by the daemon
TASK_DIR_ENV = "OPS_AGENT_TASK_DIR"  # how the daemon tells its Agent where that directory is
JOURNAL = "executions"
WORK = "work"
CLOCK_SKEW = 60  # seconds an envelope's times may be off this node's clock
JOURNAL_DAYS = 7
_EXECUTION_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")


class AgentTaskSettings(BaseModel):
    """What the daemon's configuration says about running tasks, for its Agent."""

    model_config = ConfigDict(extra="ignore")

    output_cap: int = Field(1024 * 1024, ge=1024)
    file_dirs: list[str] = Field(default_factory=list)

    @classmethod
    def read(cls, task_dir: Path) -> AgentTaskSettings:
        """The daemon's settings in `task_dir`, or the defaults."""
        try:
            return cls.model_validate_json((task_dir / SETTINGS_FILE).read_bytes())
        except (OSError, ValueError):
            return cls()


class Refused(Exception):
    """An envelope the Agent will not run; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Running:
    body: EnvelopeBody
    cancel: Cancel
    done: asyncio.Event
    started_at: int
    output: LiveOutput = field(default_factory=LiveOutput)


class TaskRunner:
    def __init__(self, task_dir: Path, node_uuid: str | None, limits: Limits) -> None:
        self.task_dir = task_dir
        self.node_uuid = node_uuid
        self.limits = limits
        self.journal = task_dir / JOURNAL
        self._running: dict[str, Running] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def prepare(self) -> None:
        self.journal.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._prune()
        self._end_orphans()

    def _end_orphans(self) -> None:
        """Executions an earlier Agent left running (it was killed): their process groups
        are killed and they end failed, so nothing they started outlives them unseen."""
        for path in self.journal.glob("*.json"):
            try:
                record: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if record.get("status") != "running":
                continue
            killed = False
            if isinstance(record.get("pgid"), int):
                killed = executors.kill_leftover_group(
                    record["pgid"], float(record.get("pgid_started", 0))
                )
            now = int(time.time())
            error = "the agent stopped while the task ran" + (
                "; its processes were killed" if killed else ""
            )
            result = TaskResult(
                execution_id=path.stem,
                status="failed",
                error=error,
                started_at=int(record.get("started_at", now)),
                finished_at=now,
            )
            self._store(result, int(record.get("not_after", now)))
            log.warning("task %s: %s", path.stem, error)

    # -- the local caller (the daemon) -------------------------------------------------------
    def local_token_ok(self, presented: str | None) -> bool:
        """Reads and cancels need the token the daemon wrote beside the key: results may
        hold what only the Manager's users should see."""
        try:
            expected = (self.task_dir / TOKEN_FILE).read_text().strip()
        except OSError:
            return False
        return bool(presented) and secrets.compare_digest(presented or "", expected)

    # -- accepting ---------------------------------------------------------------------------
    def accept(self, raw: bytes) -> TaskResult:
        """Check and claim an envelope and start it; its `running` result. Refused (with the
        HTTP status) when it must not run."""
        try:
            envelope = Envelope.model_validate_json(raw)
        except ValueError as exc:
            raise Refused(400, f"not an envelope: {exc}") from exc
        key = self._trusted_key()
        try:
            body = open_envelope(envelope, key)
        except EnvelopeRefused as exc:
            raise Refused(403, str(exc)) from exc
        node_uuid = self.node_uuid or self._node_file()
        if node_uuid is None:
            raise Refused(503, "this agent does not know which node it runs on; tasks refused")
        if body.node_uuid != node_uuid:
            raise Refused(403, f"node_uuid: the envelope is for {body.node_uuid}, not this node")
        now = time.time()
        if now > body.not_after + CLOCK_SKEW:
            raise Refused(410, "not_after: the envelope has expired")
        if body.issued_at > now + CLOCK_SKEW:
            raise Refused(403, "issued_at: the envelope is from the future")
        if not self._claim(body, int(now)):
            raise Refused(409, f"execution {body.execution_id} was received before; not run again")
        cancel = Cancel(started=lambda pgid: self._note_group(body, pgid, int(now)))
        running = Running(body, cancel, asyncio.Event(), int(now))
        self._running[body.execution_id] = running
        task = asyncio.create_task(self._run(running), name=f"task-{body.execution_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("task %s (%s) started", body.execution_id, body.type)
        return TaskResult(execution_id=body.execution_id, status="running", started_at=int(now))

    def _node_file(self) -> str | None:
        try:
            return (self.task_dir / NODE_FILE).read_text().strip() or None
        except OSError:
            return None

    def _trusted_key(self) -> ed25519.Ed25519PublicKey:
        try:
            return load_public_key((self.task_dir / KEY_FILE).read_bytes())
        except (OSError, ValueError) as exc:
            raise Refused(503, "no Manager task key is pinned on this node; tasks refused") from exc

    def _claim(self, body: EnvelopeBody, now: int) -> bool:
        path = self._path(body.execution_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        record = {"status": "running", "started_at": now, "not_after": body.not_after}
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        return True

    def _note_group(self, body: EnvelopeBody, pgid: int, started_at: int) -> None:
        """Journal the script's process group, to be killed by the next Agent if this one
        dies before the script ends."""
        try:
            created = psutil.Process(pgid).create_time()
        except psutil.Error:
            return  # ended already
        record = {
            "status": "running",
            "started_at": started_at,
            "not_after": body.not_after,
            "pgid": pgid,
            "pgid_started": created,
        }
        self._write(body.execution_id, record)

    def _write(self, execution_id: str, record: dict[str, Any]) -> None:
        path = self._path(execution_id)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)

    def _path(self, execution_id: str) -> Path:
        return self.journal / f"{execution_id}.json"

    # -- running -----------------------------------------------------------------------------
    async def _run(self, running: Running) -> None:
        body = running.body
        try:
            outcome = await self._carry_out(body, running.cancel, running.output)
        except TaskFailed as exc:
            outcome = Outcome("failed", error=str(exc))
        except Exception as exc:
            log.exception("task %s failed", body.execution_id)
            outcome = Outcome("failed", error=f"the agent failed: {type(exc).__name__}: {exc}")
        result = TaskResult(
            execution_id=body.execution_id,
            status=outcome.status,
            exit_code=outcome.exit_code,
            output=outcome.output,
            truncated=outcome.truncated,
            error=outcome.error,
            started_at=running.started_at,
            finished_at=int(time.time()),
        )
        self._store(result, body.not_after)
        log.info("task %s: %s", body.execution_id, result.status)
        self._running.pop(body.execution_id, None)
        running.output.end()  # readers of a task without live output stop waiting too
        running.done.set()

    async def _carry_out(self, body: EnvelopeBody, cancel: Cancel, live: LiveOutput) -> Outcome:
        content = body.typed_content()
        if isinstance(content, ScriptContent):
            work = self.task_dir / WORK
            return await executors.run_script(
                content, body.timeout, work, self.limits, cancel, live
            )
        if isinstance(content, FileContent):
            return await asyncio.to_thread(executors.write_file, content, self.limits)
        work_task: asyncio.Task[Outcome]
        if isinstance(content, ServiceContent):
            work_task = asyncio.create_task(
                executors.run_service(content, body.timeout, self.limits, live)
            )
        elif isinstance(content, CustomContent):
            work_task = asyncio.create_task(executors.run_custom(content, body.timeout))
        else:  # pragma: no cover - the union is closed
            raise TaskFailed(f"type: {body.type} is not known to this agent")
        stopper = asyncio.create_task(cancel.event.wait())
        done, _ = await asyncio.wait({work_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if work_task in done:
            return work_task.result()
        work_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TaskFailed):
            await work_task
        return Outcome("cancelled", error="cancelled")

    def _store(self, result: TaskResult, not_after: int) -> None:
        self._write(result.execution_id, {**result.model_dump(), "not_after": not_after})

    # -- reading and cancelling --------------------------------------------------------------
    async def result(self, execution_id: str, wait: float) -> TaskResult | None:
        """The execution's latest result, waiting up to `wait` seconds for a final one."""
        if not _EXECUTION_ID.match(execution_id):
            return None  # also keeps the id from naming a path outside the journal
        running = self._running.get(execution_id)
        if running is not None and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.done.wait(), wait)
        try:
            record: dict[str, Any] = json.loads(self._path(execution_id).read_text())
        except (OSError, ValueError):
            return None
        for journal_only in ("not_after", "pgid", "pgid_started"):
            record.pop(journal_only, None)
        if record.get("status") == "running" and execution_id not in self._running:
            # Claimed by an Agent that stopped before finishing it: it will not finish now.
            return TaskResult(
                execution_id=execution_id,
                status="failed",
                error="the agent stopped while the task ran",
                started_at=int(record.get("started_at", 0)),
                finished_at=int(time.time()),
            )
        return TaskResult.model_validate({"execution_id": execution_id, **record})

    async def output(
        self, execution_id: str, offset: int, wait: float, limit: int = MAX_PART
    ) -> OutputPart | None:
        """An execution's output from `offset` (bytes), waiting up to `wait` seconds for some
        while it runs; of one that ended, from its result's output (the same text). None for
        an execution never received."""
        running = self._running.get(execution_id)
        if running is not None:
            await running.output.wait_beyond(offset, wait)
            return running.output.read(offset, limit)
        result = await self.result(execution_id, 0)
        if result is None:
            return None
        ended = LiveOutput()
        ended.append(result.output)
        ended.end()
        return ended.read(offset, limit)

    def cancel(self, execution_id: str) -> bool:
        """Stop a running execution (its process group is killed). One not received yet is
        claimed as cancelled, so its envelope, if it comes after all, is not run. False when
        it had already ended."""
        running = self._running.get(execution_id)
        if running is not None:
            running.cancel.event.set()
            return True
        if not _EXECUTION_ID.match(execution_id):
            return False
        now = int(time.time())
        record = {
            "status": "cancelled",
            "error": "cancelled before it started",
            "started_at": now,
            "finished_at": now,
            "not_after": now + JOURNAL_DAYS * 86_400,
        }
        try:
            fd = os.open(self._path(execution_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        return True

    async def stop(self) -> None:
        """Agent shutdown: every running task is cancelled (its process group killed)."""
        for running in self._running.values():
            running.cancel.event.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _prune(self) -> None:
        """Forget executions whose envelopes have long expired (a replay of one is refused by
        its not_after anyway)."""
        horizon = time.time() - JOURNAL_DAYS * 86_400
        for path in self.journal.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(path.read_text()).get("not_after", 0) < horizon:
                    path.unlink()
