"""Signed task envelopes for tests, and a real Agent process that runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519

from opscaffold.daemon.agent.tasks import KEY_FILE, TOKEN_FILE
from opscaffold.protocol import task as protocol
from tests.daemon.helpers import health
from tests.helpers import free_port, poll_until

NODE_UUID = "6f1c7c59-0a57-4a3e-9d5d-3b1f0e0c2a11"


def body(
    type: str = "script",
    content: dict[str, Any] | None = None,
    *,
    timeout: int = 30,
    node_uuid: str = NODE_UUID,
    not_after: float | None = None,
    execution_id: str | None = None,
) -> protocol.EnvelopeBody:
    now = int(time.time())
    return protocol.EnvelopeBody(
        execution_id=execution_id or str(uuid.uuid4()),
        task_id=1,
        node_id=1,
        node_uuid=node_uuid,
        type=type,
        content=content if content is not None else {"script": "echo hello"},
        timeout=timeout,
        issued_at=now,
        not_after=int(not_after if not_after is not None else now + 600),
    )


@dataclass
class Agent:
    port: int
    process: subprocess.Popen[bytes]
    key: ed25519.Ed25519PrivateKey
    token: str
    task_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def submit(self, envelope: protocol.Envelope) -> httpx.Response:
        return httpx.post(f"{self.url}/tasks", content=envelope.model_dump_json(), timeout=10)

    def run(self, body: protocol.EnvelopeBody) -> httpx.Response:
        return self.submit(protocol.seal(body, self.key))

    def result(self, execution_id: str, wait: float = 0) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/tasks/{execution_id}?wait={wait}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=wait + 10,
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def final(self, execution_id: str, timeout: float = 30) -> dict[str, Any]:
        return poll_until(  # type: ignore[no-any-return]
            lambda: (r := self.result(execution_id, wait=2))["status"] != "running" and r,
            timeout=timeout,
            what=f"execution {execution_id} ends",
        )

    def cancel(self, execution_id: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/tasks/{execution_id}/cancel",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )


@contextmanager
def running_agent(
    tmp_path: Path, *extra: str, key: ed25519.Ed25519PrivateKey | None = None
) -> Iterator[Agent]:
    """An Agent process on a free port whose pinned key is `key` (or a fresh one)."""
    task_dir = tmp_path / "agent"
    task_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = key or protocol.generate_key()
    (task_dir / KEY_FILE).write_bytes(protocol.public_pem(key.public_key()))
    token = uuid.uuid4().hex
    (task_dir / TOKEN_FILE).write_text(token)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "opscaffold.daemon.agent",
            "--port", str(port), "--host", "127.0.0.1",
            "--task-dir", str(task_dir), "--node-uuid", NODE_UUID,
            *extra,
        ]
    )  # fmt: skip
    try:
        poll_until(lambda: health(port) is not None, what="the agent answers /health")
        yield Agent(port, process, key, token, task_dir)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def journal(agent: Agent, execution_id: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        (agent.task_dir / "executions" / f"{execution_id}.json").read_text()
    )
    return found


def output_part(agent: Agent, execution_id: str, offset: int, wait: float = 0) -> dict[str, Any]:
    response = httpx.get(
        f"{agent.url}/tasks/{execution_id}/output",
        params={"offset": offset, "wait": wait},
        headers={"Authorization": f"Bearer {agent.token}"},
        timeout=wait + 10,
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found
