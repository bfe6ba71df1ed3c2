"""Tasks between the Manager and this node's Agent: the daemon hands each signed envelope (a
`task` command) to the Agent over local HTTP, follows the execution, and queues its results
for the Manager, which are resent until acknowledged. The daemon checks nothing of the
envelope itself: the Agent does (signature, node, expiry, replay).

The daemon's part of the trust: the Manager's task key lives in the Agent's directory
(`manager-task-key.pem`). It is pinned at install (`--manager-key`), or, when none was, taken
once from the Manager's first Register answer, over the channel the enrollment token
authenticated; after that nothing the Manager says replaces it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import ValidationError

from opscaffold.daemon.agent.tasks import (
    KEY_FILE,
    NODE_FILE,
    SETTINGS_FILE,
    TOKEN_FILE,
    AgentTaskSettings,
)
from opscaffold.daemon.commands import CommandError
from opscaffold.daemon.orders import task_report
from opscaffold.daemon.state import private_dir, write_private
from opscaffold.daemon.taskoutput import OutputReport, pass_output
from opscaffold.daemon.taskoutput import stop as stop_passing
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.task import (
    CancelOrder,
    EnvelopeBody,
    TaskOrder,
    TaskResult,
    load_public_key,
)

log = logging.getLogger(__name__)
POLL_WAIT = 25.0  # seconds one result request waits for the end
RETRY_S = 1.0
LOST_AFTER = 120.0  # seconds past an execution's last possible end before giving up on it
Report = Callable[[pb.TaskResultReport], None]


class TaskKeyError(ValueError):
    """A key file that is not an Ed25519 public key in PEM."""


class TaskKeyStore:
    """The Manager's task key as this node pins it, in the Agent's directory."""

    def __init__(self, task_dir: Path) -> None:
        self.task_dir = task_dir
        self.path = task_dir / KEY_FILE

    def pinned(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def pin(self, pem: bytes) -> None:
        """Pin a key given at install; replaces an earlier one (an operator's explicit act)."""
        _check(pem, "--manager-key")
        private_dir(self.task_dir)
        if (old := self.pinned()) is not None and old != pem:
            log.warning("the Manager's task key is replaced by the one given with --manager-key")
        write_private(self.path, pem)

    def offer(self, pem: bytes) -> bool:
        """A key the Manager names: kept only if none is pinned yet. True when it was kept."""
        current = self.pinned()
        if current is not None:
            if current.strip() != pem.strip():
                log.warning(
                    "the Manager names a task key other than the pinned one; keeping the pinned "
                    "key (tasks signed with another are refused). Pin the new key with "
                    "--manager-key if it was rotated on purpose."
                )
            return False
        try:
            _check(pem, "the Manager's Register answer")
        except TaskKeyError as exc:
            log.warning("%s", exc)
            return False
        private_dir(self.task_dir)
        write_private(self.path, pem)
        log.info("the Manager's task key is now pinned (learned at enrollment)")
        return True


def _check(pem: bytes, source: str) -> None:
    try:
        load_public_key(pem)
    except ValueError as exc:
        raise TaskKeyError(f"task key from {source}: {exc}") from exc


def prepare_agent_dir(
    task_dir: Path, node_uuid: str, settings: AgentTaskSettings | None = None
) -> str:
    """Before the Agent starts: its directory, this node's uuid, the task settings, and a new
    local token that the daemon (and nobody else) uses to read results and cancel. Returns
    the token."""
    private_dir(task_dir)
    write_private(task_dir / NODE_FILE, node_uuid.encode())
    write_private(
        task_dir / SETTINGS_FILE, (settings or AgentTaskSettings()).model_dump_json().encode()
    )
    token = secrets.token_urlsafe(32)
    write_private(task_dir / TOKEN_FILE, token.encode())
    return token


class AgentTasks:
    def __init__(
        self, base_url: str, token: str, report: Report, report_output: OutputReport | None = None
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.report = report
        self.report_output = report_output  # None: output goes with the final result only

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def carry_out(self, payload: bytes) -> None:
        """Hand a `task` command's envelope to the Agent and follow it to its end, reporting
        `running` and the final result. CommandError when the Agent refuses it."""
        try:
            order = TaskOrder.model_validate_json(payload or b"{}")
            body = EnvelopeBody.model_validate_json(order.envelope.body)
        except ValidationError as exc:
            raise CommandError(f"the task order is not valid: {exc}") from exc
        execution_id = body.execution_id
        async with httpx.AsyncClient(timeout=POLL_WAIT + 10) as http:
            try:
                response = await http.post(
                    f"{self.base_url}/tasks", content=order.envelope.model_dump_json()
                )
            except httpx.HTTPError as exc:
                self._fail(execution_id, f"the agent did not take the task: {exc}")
                raise CommandError(f"the agent did not answer: {exc}") from exc
            if response.status_code == 202:
                self.report(task_report(TaskResult.model_validate(response.json())))
            elif response.status_code != 409:  # 409: taken before (a redelivery); follow it
                reason = _reason(response)
                self._fail(execution_id, f"the agent refused the task: {reason}")
                raise CommandError(f"the agent refused the task: {reason}")
            give_up = body.not_after + body.timeout + LOST_AFTER
            output = self._pass_output(http, execution_id)
            try:
                final = await self._follow(http, execution_id, give_up)
            finally:
                await stop_passing(output)
        self.report(task_report(final))

    def _pass_output(self, http: httpx.AsyncClient, execution_id: str) -> asyncio.Task[None] | None:
        """Pass the execution's output on while it runs, beside following its result."""
        if self.report_output is None:
            return None
        passing = pass_output(
            http, self.base_url, self._headers(), execution_id, self.report_output
        )
        return asyncio.create_task(passing, name=f"task-output-{execution_id}")

    async def _follow(
        self, http: httpx.AsyncClient, execution_id: str, give_up: float
    ) -> TaskResult:
        url = f"{self.base_url}/tasks/{execution_id}"
        while time.time() < give_up:
            try:
                response = await http.get(url, params={"wait": POLL_WAIT}, headers=self._headers())
            except httpx.HTTPError as exc:  # the agent restarting: it answers again soon
                log.debug("task %s: agent not answering (%s)", execution_id, exc)
                await asyncio.sleep(RETRY_S)
                continue
            if response.status_code == 200:
                result = TaskResult.model_validate(response.json())
                if result.final:
                    return result
            else:
                log.warning("task %s: agent answered %s", execution_id, response.status_code)
                await asyncio.sleep(RETRY_S)
        return TaskResult(
            execution_id=execution_id,
            status="failed",
            error="the agent never said how the task ended",
            finished_at=int(time.time()),
        )

    def _fail(self, execution_id: str, reason: str) -> None:
        now = int(time.time())
        self.report(
            task_report(
                TaskResult(
                    execution_id=execution_id,
                    status="failed",
                    error=reason,
                    started_at=now,
                    finished_at=now,
                )
            )
        )

    async def cancel(self, payload: bytes) -> None:
        """A `task_cancel` command: the Agent kills the execution's process group; its result
        (`cancelled`) follows through the `task` command that started it."""
        try:
            order = CancelOrder.model_validate_json(payload or b"{}")
        except ValidationError as exc:
            raise CommandError(f"the cancel order is not valid: {exc}") from exc
        async with httpx.AsyncClient(timeout=10) as http:
            try:
                response = await http.post(
                    f"{self.base_url}/tasks/{order.execution_id}/cancel", headers=self._headers()
                )
            except httpx.HTTPError as exc:
                raise CommandError(f"the agent did not answer: {exc}") from exc
        if response.status_code != 200:
            raise CommandError(f"the agent refused to cancel: {_reason(response)}")


def _reason(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    return f"{response.status_code} {error or response.reason_phrase}"
