"""A small HTTP/1.1 server on asyncio streams: the Agent must install without the Manager's web
stack, and one health route does not need one. Each connection serves one request."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from http import HTTPStatus

import typer

from opscaffold.daemon import package_version

log = logging.getLogger(__name__)
READ_TIMEOUT = 10.0
MAX_LINE = 8192
MAX_HEADERS = 100
PARENT_CHECK_INTERVAL = 1.0


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


class AgentServer:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.health = Health(os.getpid(), package_version(), int(time.time()))

    async def serve(self, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self._handle, self.host, self.port, limit=MAX_LINE)
        log.info("agent %s listening on %s:%d", self.health.version, self.host, self.port)
        async with server:
            await stop.wait()
        log.info("agent stopped")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT)
            status, body = self._route(method, path)
        except (BadRequest, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            status, body = HTTPStatus.BAD_REQUEST, {"error": str(exc) or "bad request"}
        try:
            writer.write(_response(status, body))
            await writer.drain()
        except ConnectionError:
            pass  # the client left; nothing to tell it
        finally:
            writer.close()

    def _route(self, method: str, path: str) -> tuple[HTTPStatus, dict[str, object]]:
        if path.split("?", 1)[0] != "/health":
            return HTTPStatus.NOT_FOUND, {"error": f"no route {path}"}
        if method != "GET":
            return HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method} not allowed"}
        return HTTPStatus.OK, self.health.body()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and target of one request. Headers are read and ignored; a body is never
    read, since the connection closes after the answer."""
    parts = (await reader.readline()).decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    for _ in range(MAX_HEADERS):
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return parts[0], parts[1]
        if not line:
            raise BadRequest("headers ended early")
    raise BadRequest("too many headers")


def _response(status: HTTPStatus, body: dict[str, object]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + payload


async def _serve_until_signalled(host: str, port: int, parent_pid: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watch = asyncio.create_task(_stop_without_parent(parent_pid, stop)) if parent_pid else None
    try:
        await AgentServer(host, port).serve(stop)
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
) -> None:
    """Run the Agent (the daemon starts it; run it by hand only to try it)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve_until_signalled(host, port, parent_pid))
    except OSError as exc:
        # One plain line: the supervisor reports the agent's last stderr line as last_error.
        log.error("cannot serve on %s:%d: %s", host, port, exc)
        raise typer.Exit(1) from exc
