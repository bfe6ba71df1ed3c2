"""A small HTTP/1.1 server on asyncio streams: the Agent must install without the Manager's web
stack, and a handful of routes do not need one. Each connection serves one request.

Routes: `GET /health`; `POST /tasks` takes a signed task envelope (the daemon relays those the
Manager queues for this node; a direct call from the Manager will use the same route);
`GET /tasks/{id}?wait=S` answers an execution's result (waiting up to S seconds for a final
one), `GET /tasks/{id}/output?offset=N&wait=S` its output from byte N (while it runs, waiting
up to S seconds for some), and `POST /tasks/{id}/cancel` stops it, all only for the local token's
holder."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

import typer

from opscaffold.daemon import package_version
from opscaffold.daemon.agent.executors import Limits
from opscaffold.daemon.agent.tasks import TASK_DIR_ENV, AgentTaskSettings, Refused, TaskRunner
from opscaffold.protocol.task import MAX_ENVELOPE_BYTES

log = logging.getLogger(__name__)
READ_TIMEOUT = 10.0
MAX_LINE = 8192
MAX_HEADERS = 100
PARENT_CHECK_INTERVAL = 1.0
MAX_WAIT = 60.0  # longest a result request may wait
Body = dict[str, object]


class BadRequest(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Health:
    pid: int
    version: str
    started_at: int  # Unix seconds

    def body(self) -> dict[str, object]:
        return {
            "status": "ok",
            "pid": self.pid,
            "version": self.version,
            "started_at": self.started_at,
        }


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes


class AgentServer:
    def __init__(self, host: str, port: int, runner: TaskRunner | None = None) -> None:
        self.host = host
        self.port = port
        self.health = Health(os.getpid(), package_version(), int(time.time()))
        self.runner = runner

    async def serve(self, stop: asyncio.Event) -> None:
        if self.runner is not None:
            self.runner.prepare()
        server = await asyncio.start_server(self._handle, self.host, self.port, limit=MAX_LINE)
        log.info("agent %s listening on %s:%d", self.health.version, self.host, self.port)
        try:
            async with server:
                await stop.wait()
        finally:
            if self.runner is not None:
                await self.runner.stop()
        log.info("agent stopped")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT)
            status, body = await self._route(request)
        except (BadRequest, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            status, body = HTTPStatus.BAD_REQUEST, {"error": str(exc) or "bad request"}
        try:
            writer.write(_response(status, body))
            await writer.drain()
        except ConnectionError:
            pass  # the client left; nothing to tell it
        finally:
            writer.close()

    async def _route(self, request: Request) -> tuple[HTTPStatus, Body]:
        method, path = request.method, request.path
        if path == "/health":
            if method != "GET":
                return HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method} not allowed"}
            return HTTPStatus.OK, self.health.body()
        if path == "/tasks" or path.startswith("/tasks/"):
            return await self._tasks(request)
        return HTTPStatus.NOT_FOUND, {"error": f"no route {path}"}

    async def _tasks(self, request: Request) -> tuple[HTTPStatus, Body]:
        runner = self.runner
        if runner is None:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "this agent runs no tasks"}
        parts = request.path.strip("/").split("/")
        if parts == ["tasks"]:
            if request.method != "POST":
                return HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{request.method} not allowed"}
            try:
                started = runner.accept(request.body)
            except Refused as refused:
                return HTTPStatus(refused.status), {"error": str(refused)}
            return HTTPStatus.ACCEPTED, started.model_dump()
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not runner.local_token_ok(token):
            return HTTPStatus.UNAUTHORIZED, {"error": "the local token is required"}
        if len(parts) == 2 and request.method == "GET":
            wait = min(float((request.query.get("wait") or ["0"])[0]), MAX_WAIT)
            result = await runner.result(parts[1], max(wait, 0.0))
            if result is None:
                return HTTPStatus.NOT_FOUND, {"error": f"no execution {parts[1][:64]}"}
            return HTTPStatus.OK, result.model_dump()
        if len(parts) == 3 and parts[2] == "output" and request.method == "GET":
            offset = int((request.query.get("offset") or ["0"])[0])
            wait = min(float((request.query.get("wait") or ["0"])[0]), MAX_WAIT)
            part = await runner.output(parts[1], max(offset, 0), max(wait, 0.0))
            if part is None:
                return HTTPStatus.NOT_FOUND, {"error": f"no execution {parts[1][:64]}"}
            return HTTPStatus.OK, part.model_dump()
        if len(parts) == 3 and parts[2] == "cancel" and request.method == "POST":
            return HTTPStatus.OK, {"cancelled": runner.cancel(parts[1])}
        return HTTPStatus.NOT_FOUND, {"error": f"no route {request.method} {request.path}"}


async def _read_request(reader: asyncio.StreamReader) -> Request:
    """One request: its line, headers and (by Content-Length) body."""
    parts = (await reader.readline()).decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise BadRequest("headers ended early")
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise BadRequest("too many headers")
    length = int(headers.get("content-length", "0") or "0")
    if not 0 <= length <= MAX_ENVELOPE_BYTES + 4096:
        raise BadRequest(f"a body of {length} bytes is not accepted")
    body = await reader.readexactly(length) if length else b""
    path, _, query = parts[1].partition("?")
    return Request(parts[0], path, parse_qs(query), headers, body)


def _response(status: HTTPStatus, body: Body) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + payload


async def _serve_until_signalled(
    host: str, port: int, parent_pid: int | None, runner: TaskRunner | None = None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watch = asyncio.create_task(_stop_without_parent(parent_pid, stop)) if parent_pid else None
    try:
        await AgentServer(host, port, runner).serve(stop)
    finally:
        if watch is not None:
            watch.cancel()


async def _stop_without_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """A daemon killed with SIGKILL cannot stop its agent; an orphan would keep the port and
    make the next daemon's agent fail to start. So the agent leaves when it is reparented."""
    # Polled: nothing signals a reparenting (pidfd would, but not on every kernel we run on).
    while True:
        if os.getppid() != parent_pid:
            break
        await asyncio.sleep(PARENT_CHECK_INTERVAL)
    log.warning("parent process %d is gone; stopping", parent_pid)
    stop.set()


def agent(
    port: int = typer.Option(9100, min=1, max=65535, help="Port to serve on."),
    host: str = typer.Option("0.0.0.0", help="Address to bind."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    parent_pid: int | None = typer.Option(None, help="Stop when no longer this pid's child."),
    task_dir: Path | None = typer.Option(
        None,
        envvar=TASK_DIR_ENV,
        help="Where the pinned Manager key, local token, settings and execution journal live "
        "(the daemon names it in the environment); none: no tasks are run.",
    ),
    node_uuid: str | None = typer.Option(None, help="This node's uuid: envelopes must name it."),
    output_cap: int | None = typer.Option(
        None, min=1024, help="Bytes of a task's output kept (the rest is cut, and said so)."
    ),
    file_dir: list[Path] | None = typer.Option(
        None, help="A directory file tasks may write under (repeatable; none: no file tasks)."
    ),
) -> None:
    """Run the Agent (the daemon starts it; run it by hand only to try it)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    runner = None
    if task_dir is not None:
        # The daemon's settings, unless the command line says otherwise.
        given = AgentTaskSettings.read(task_dir)
        dirs = [p.resolve() for p in file_dir] if file_dir else [Path(p) for p in given.file_dirs]
        limits = Limits(output_cap=output_cap or given.output_cap, file_dirs=dirs)
        runner = TaskRunner(task_dir, node_uuid, limits)
    try:
        asyncio.run(_serve_until_signalled(host, port, parent_pid, runner))
    except OSError as exc:
        # One plain line: the supervisor reports the agent's last stderr line as last_error.
        log.error("cannot serve on %s:%d: %s", host, port, exc)
        raise typer.Exit(1) from exc
