"""How the Agent carries out each type of task: a script in its own process group, a file
written only inside allowed directories, a systemd unit, a registered handler."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import platform
import pwd
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from opscaffold.daemon.agent.output import Capture, LiveOutput
from opscaffold.protocol.task import (
    CustomContent,
    FileContent,
    ScriptContent,
    ServiceContent,
)
from opscaffold.protocol.text import wire_text

KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL of a task's process group
READ_CHUNK = 64 * 1024
BASE_ENV = ("PATH", "LANG", "LC_ALL", "HOME", "USER", "LOGNAME", "TZ")
SERVICE_TIMEOUT_CAP = 300


@dataclass(slots=True)
class Outcome:
    """How a task ended: `status` is success, failed, timeout or cancelled."""

    status: str
    exit_code: int | None = None
    output: str = ""
    truncated: bool = False
    error: str = ""


class TaskFailed(Exception):
    """A task that could not be carried out; the message is the reason the Manager shows."""


@dataclass(slots=True)
class Limits:
    output_cap: int = 1024 * 1024  # bytes of stdout+stderr kept
    file_dirs: Sequence[Path] = ()  # where file tasks may write
    kill_grace: float = KILL_GRACE


@dataclass(slots=True)
class Cancel:
    """Set by a cancel request; a running script's process group is killed at once.
    `started` hears of the group a script runs in, so an Agent that is killed before the
    script ends can find the group again when it starts (and kill it)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    started: Callable[[int], None] | None = None


# -- script -------------------------------------------------------------------------------
async def run_script(
    content: ScriptContent,
    seconds: float,
    work_dir: Path,
    limits: Limits,
    cancel: Cancel,
    live: LiveOutput | None = None,
) -> Outcome:
    """Run interpreter + script in a new session (its own process group), capped output
    (published to `live` as it comes); at the timeout or on cancel the whole group gets
    SIGTERM, then SIGKILL."""
    script = await asyncio.to_thread(_script_file, work_dir, content.script)
    env = {k: v for k, v in os.environ.items() if k in BASE_ENV}
    env.update({name: item.value for name, item in content.env.items()})
    secrets = [item.value for item in content.env.values() if item.secret]
    cwd = content.workdir or str(work_dir)
    try:
        process = await asyncio.create_subprocess_exec(
            content.interpreter,
            str(script),
            *content.args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        script.unlink(missing_ok=True)
        return Outcome("failed", error=f"cannot start {content.interpreter}: {exc.strerror}")
    if cancel.started is not None:
        cancel.started(process.pid)
    capture = Capture(limits.output_cap, secrets, live)
    assert process.stdout is not None
    reader = asyncio.create_task(_drain(process.stdout, capture))
    waiter = asyncio.create_task(process.wait())
    cancelled = asyncio.create_task(cancel.event.wait())
    try:
        done, _ = await asyncio.wait(
            {waiter, cancelled}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter in done:
            status = "success" if process.returncode == 0 else "failed"
        else:
            status = "cancelled" if cancelled in done else "timeout"
        # The group goes whatever happened: children left behind by a finished script too.
        await _kill_group(process, limits.kill_grace)
        await _finish_reading(reader)
    finally:
        cancelled.cancel()
        if not waiter.done():
            waiter.cancel()
        script.unlink(missing_ok=True)
    code = process.returncode
    error = ""
    if status == "failed":
        error = f"exit code {code}"
    elif status == "timeout":
        error = f"killed after its timeout of {seconds:g}s"
    elif status == "cancelled":
        error = "cancelled: its process group was killed"
    return Outcome(
        status,
        exit_code=code if status in ("success", "failed") else None,
        output=capture.finish(),
        truncated=capture.truncated,
        error=error,
    )


def _script_file(work_dir: Path, text: str) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    script = work_dir / f"{uuid.uuid4().hex}.script"
    script.write_text(text, encoding="utf-8")
    os.chmod(script, 0o700)
    return script


async def _drain(stream: asyncio.StreamReader, capture: Capture) -> None:
    while chunk := await stream.read(READ_CHUNK):
        capture.add(chunk)


async def _finish_reading(reader: asyncio.Task[None]) -> None:
    """Once the group is gone the pipe ends; a grandchild that escaped the group (setsid)
    could hold it open, so the reading is bounded."""
    try:
        await asyncio.wait_for(reader, 2.0)
    except TimeoutError:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _kill_group(process: asyncio.subprocess.Process, grace: float) -> None:
    pgid = process.pid  # start_new_session: the leader's pid names its group
    if not _group_alive(pgid):
        await process.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 0.05)
        else:
            await asyncio.sleep(0.05)
        if not _group_alive(pgid):
            break
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    await process.wait()
    # SIGKILL cannot be refused, but the kernel needs a moment; nothing signals a group's end.
    while _group_alive(pgid):  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def kill_leftover_group(pgid: int, started_at: float) -> bool:
    """SIGKILL a task's process group left by an Agent that died, if its leader is still the
    process that started at `started_at` (a pid reused by anything else is left alone).
    True when a group was killed."""
    try:
        leader = psutil.Process(pgid)
        if abs(leader.create_time() - started_at) > 1 or os.getpgid(pgid) != pgid:
            return False
        os.killpg(pgid, signal.SIGKILL)
    except (psutil.Error, ProcessLookupError, PermissionError):
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- file ---------------------------------------------------------------------------------
def write_file(content: FileContent, limits: Limits) -> Outcome:
    """Write `content.content` to `dest` atomically with its mode (and owner), only inside
    an allowed directory, never through a symlink or `..`."""
    dest = Path(content.dest)
    if ".." in dest.parts or str(dest) != os.path.normpath(str(dest)):
        raise TaskFailed(f"dest: {content.dest!r} must be a plain absolute path (no '..')")
    root = next((Path(d) for d in limits.file_dirs if _inside(dest, Path(d))), None)
    if root is None:
        allowed = ", ".join(str(d) for d in limits.file_dirs) or "none configured"
        raise TaskFailed(f"dest: {content.dest} is outside the allowed directories ({allowed})")
    _refuse_links(root, dest)
    if dest.exists() and not content.overwrite:
        raise TaskFailed(f"dest: {content.dest} exists and overwrite is false")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _refuse_links(root, dest)  # nothing was swapped for a link while directories were made
    mode = int(content.mode, 8)
    temporary = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.content.encode())
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if content.owner:
                uid, gid = _owner(content.owner)
                os.fchown(handle.fileno(), uid, gid)
            os.fsync(handle.fileno())
        os.replace(temporary, dest)
    except PermissionError as exc:
        raise TaskFailed(f"cannot write {content.dest}: {exc.strerror}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    size = len(content.content.encode())
    return Outcome("success", output=f"wrote {size} bytes to {dest} (mode {mode:04o})\n")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _refuse_links(root: Path, dest: Path) -> None:
    """No component from the allowed root down to dest may be a symlink."""
    current = root
    if current.is_symlink():
        raise TaskFailed(f"dest: {current} is a symlink; refused")
    for part in dest.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            raise TaskFailed(f"dest: {current} is a symlink; refused")


def _owner(owner: str) -> tuple[int, int]:
    user, _, group = owner.partition(":")
    try:
        entry = pwd.getpwnam(user)
        gid = grp.getgrnam(group).gr_gid if group else entry.pw_gid
    except KeyError as exc:
        raise TaskFailed(f"owner: {owner!r} is not a user (or group) on this node") from exc
    return entry.pw_uid, gid


# -- service ------------------------------------------------------------------------------
def _systemctl() -> str | None:
    """systemctl, where systemd runs this node (the binary alone may be a leftover)."""
    found = shutil.which("systemctl")
    return found if found is not None and Path("/run/systemd/system").is_dir() else None


async def run_service(
    content: ServiceContent, seconds: float, limits: Limits, live: LiveOutput | None = None
) -> Outcome:
    systemctl = await asyncio.to_thread(_systemctl)
    if systemctl is None:
        raise TaskFailed("service tasks need systemd, and this node does not run it")
    process = await asyncio.create_subprocess_exec(
        systemctl,
        "--no-pager",
        content.action,
        content.name,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    capture = Capture(limits.output_cap, (), live)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(min(seconds, SERVICE_TIMEOUT_CAP)):
            await _drain(process.stdout, capture)
            await process.wait()
    except TimeoutError:
        await _kill_group(process, limits.kill_grace)
        return Outcome("timeout", output=capture.finish(), error="systemctl did not finish")
    code = process.returncode
    status = "success" if code == 0 else "failed"
    return Outcome(
        status,
        exit_code=code,
        output=capture.finish(),
        truncated=capture.truncated,
        error="" if code == 0 else f"systemctl {content.action} {content.name}: exit {code}",
    )


# -- custom -------------------------------------------------------------------------------
Handler = Callable[[dict[str, Any]], Awaitable[str]]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    """Register a custom task handler under `name` (what a task's `content.handler` names)."""

    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


@handler("disk.usage")
async def disk_usage(params: dict[str, Any]) -> str:
    """Total, used and free bytes of each path in `params.paths` (default `/`)."""
    paths = params.get("paths", ["/"])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or not paths:
        raise TaskFailed("params.paths: must be a non-empty list of paths")
    lines = []
    for path in paths[:100]:
        try:
            usage = await asyncio.to_thread(shutil.disk_usage, path)
        except OSError as exc:
            raise TaskFailed(f"params.paths: {path}: {exc.strerror}") from exc
        lines.append(f"{path}\ttotal={usage.total}\tused={usage.used}\tfree={usage.free}")
    return "\n".join(lines) + "\n"


@handler("system.info")
async def system_info(params: dict[str, Any]) -> str:
    """Host name, kernel, architecture and load averages."""
    load = os.getloadavg()
    return (
        f"hostname={socket.gethostname()}\nkernel={platform.release()}\n"
        f"arch={platform.machine()}\nload={load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )


async def run_custom(content: CustomContent, seconds: float) -> Outcome:
    fn = HANDLERS.get(content.handler)
    if fn is None:
        raise TaskFailed(
            f"handler: no handler {content.handler!r} on this agent (has {sorted(HANDLERS)})"
        )
    try:
        async with asyncio.timeout(seconds):
            output = await fn(dict(content.params))
    except TimeoutError:
        return Outcome("timeout", error=f"handler {content.handler} did not finish in time")
    return Outcome("success", output=wire_text(output))
