"""Installing signed packages of the agent or the daemon itself, side by side, with rollback.

One order goes: refuse an older version unless a rollback is meant → check the manifest's
signature against the trusted keys (before a byte is downloaded) → download, resuming what an
earlier attempt left, never more than the signed size → check size and sha256 → unpack safely
into `versions/<component>/<version>/` → switch the `current` link atomically → restart the
agent (or re-execute the daemon) → check that the new version answers → keep it, or switch
back. Each state goes to a callback (the states of the Manager's update records), and the
outcome is remembered by record id, so an order delivered twice is installed once.

State directory layout:

    downloads/<file>.<sha256 prefix>.part   a download in progress (resumed by the next try)
    versions/<component>/<version>/         an unpacked package
    versions/<component>/current            symlink to the version in use
    updates/<record id>.json                the outcome of an order
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from opscaffold.daemon import package_version
from opscaffold.daemon.state import private_dir, write_private
from opscaffold.daemon.supervisor import AgentSupervisor
from opscaffold.daemon.trust import TrustStore
from opscaffold.daemon.unpack import UnsafePackage, extract
from opscaffold.protocol.manifest import BadSignature, Manifest, verify
from opscaffold.protocol.package import (
    INFO_FILE,
    PackageInfo,
    file_name,
    host_arch,
    host_os,
)
from opscaffold.protocol.update import MAX_MESSAGE, UpdateOrder, UpdateState, UpdateStatus
from opscaffold.protocol.versions import InvalidVersion, Version

log = logging.getLogger(__name__)
Report = Callable[[UpdateState], Awaitable[None]]
KEEP_OUTCOMES = 256
AGENT_MODULE = "opscaffold.daemon.agent"


class UpdateFailed(Exception):
    """The order cannot be carried out; nothing was switched (or it was switched back)."""

    status: UpdateStatus = "failed"


class RolledBack(UpdateFailed):
    status: UpdateStatus = "rollback"


class _Interrupted(Exception):
    """A download that ended early; the next attempt resumes it."""


@dataclass(slots=True)
class AgentHooks:
    """How the updater reaches the agent: the daemon's supervisor, the arguments its command
    line ends with, and where it answers /health."""

    supervisor: AgentSupervisor
    arguments: Sequence[str]
    health_url: str


@dataclass(slots=True)
class UpdaterSettings:
    keep_versions: int = 3
    health_timeout: float = 30.0
    download_attempts: int = 3
    http_timeout: float = 30.0
    argv: Sequence[str] = field(default_factory=lambda: list(sys.argv))


class UpdateOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: UpdateState
    component: str
    version: str
    previous: str | None = None  # the version switched away from, to go back to
    command_id: str | None = None  # the command that carried the order, if one did


def _exec(argv: list[str]) -> None:
    os.execv(argv[0], argv)  # noqa: S606 - our interpreter and the verified entry point


class Updater:
    def __init__(
        self,
        state_dir: Path,
        agent: AgentHooks,
        node_token: Callable[[], str | None],
        settings: UpdaterSettings | None = None,
        *,
        before_exec: Callable[[], Awaitable[None]] | None = None,
        exec_daemon: Callable[[list[str]], None] = _exec,
    ) -> None:
        self.state_dir = state_dir
        self.agent = agent
        self.settings = settings or UpdaterSettings()
        self.trust = TrustStore(state_dir)
        self.versions = state_dir / "versions"
        self.downloads = state_dir / "downloads"
        self.outcomes = state_dir / "updates"
        self._node_token = node_token
        self._before_exec = before_exec
        self._exec_daemon = exec_daemon
        self._lock = asyncio.Lock()  # one order at a time: they share the links and the agent

    # ---- the order -----------------------------------------------------------------------

    async def apply(
        self, order: UpdateOrder, report: Report, *, command_id: str | None = None
    ) -> UpdateState:
        """Carry out `order`, reporting each state; the final state is also returned. An
        order seen before is answered with its remembered outcome and not carried out.
        `command_id` names the command that carried it: a re-executed daemon reports its
        result at start (confirm_started), since this process will not."""
        async with self._lock:
            remembered = self._remembered(order.record_id)
            if remembered is not None:
                log.info("update %d seen before: %s", order.record_id, remembered.state.status)
                await report(remembered.state)
                return remembered.state
            outcome = await self._carry_out(order, report, command_id)
            self._remember(outcome)
            await report(outcome.state)
            return outcome.state

    async def _carry_out(
        self, order: UpdateOrder, report: Report, command_id: str | None
    ) -> UpdateOutcome:
        manifest = order.manifest
        try:
            await self._install(order, report, command_id)
            state = self._state(order, "success", 100)
        except UpdateFailed as exc:
            log.warning("update %d %s: %s", order.record_id, exc.status, exc)
            state = self._state(order, exc.status, 0, str(exc))
        except Exception as exc:  # a bug or the disk: still an answer for the Manager
            log.exception("update %d failed", order.record_id)
            state = self._state(order, "failed", 0, f"{type(exc).__name__}: {exc}")
        return UpdateOutcome(state=state, component=manifest.component, version=manifest.version)

    async def _install(self, order: UpdateOrder, report: Report, command_id: str | None) -> None:
        manifest = order.manifest
        self._check_order(order)
        await report(self._state(order, "downloading", 0))
        archive = await self._download(order, report)
        await report(self._state(order, "installing", 0))
        await asyncio.to_thread(self._unpack, archive, manifest)
        previous = self._switch(manifest.component, manifest.version)
        await report(self._state(order, "verifying", 0))
        if manifest.component == "agent":
            await self._verify_agent(manifest, previous)
        else:
            await self._reexecute(order, previous, command_id)
        archive.unlink(missing_ok=True)
        await asyncio.to_thread(self._prune, manifest.component)

    def _check_order(self, order: UpdateOrder) -> None:
        """Everything that can be refused before downloading: platform, version, signature."""
        manifest = order.manifest
        if (manifest.os, manifest.arch) != (host_os(), host_arch()):
            raise UpdateFailed(
                f"the package is for {manifest.os}/{manifest.arch}, "
                f"this node is {host_os()}/{host_arch()}"
            )
        if manifest.size == 0:
            raise UpdateFailed("the manifest signs an empty file, which is no package")
        self._check_version(manifest, order.rollback)
        keys = self.trust.public_keys()
        if not keys:
            raise UpdateFailed(f"no trusted keys in {self.trust.directory}: nothing can verify")
        try:
            verify(manifest, order.signature_bytes(), keys)
        except BadSignature as exc:
            raise UpdateFailed(str(exc)) from exc

    def _check_version(self, manifest: Manifest, rollback: bool) -> None:
        installed = self.installed_version(manifest.component)
        try:
            current = Version(installed)
        except InvalidVersion:  # a source tree never installed: any release replaces it
            return
        wanted = Version(manifest.version)
        if wanted == current:
            raise UpdateFailed(f"{manifest.component} {installed} is already installed")
        if wanted < current and not rollback:
            raise UpdateFailed(
                f"{manifest.component} {manifest.version} is older than the installed "
                f"{installed}; only a rollback may go back"
            )

    def installed_version(self, component: str) -> str:
        if component == "daemon":
            return package_version()  # the code running now
        info = self._current_info("agent")
        return info.version if info is not None else package_version()

    # ---- download ------------------------------------------------------------------------

    async def _download(self, order: UpdateOrder, report: Report) -> Path:
        manifest = order.manifest
        private_dir(self.downloads)
        name = file_name(manifest.component, manifest.version, manifest.os, manifest.arch)
        part = self.downloads / f"{name}.{manifest.sha256[:16]}.part"
        problem = ""
        for attempt in range(self.settings.download_attempts):
            try:
                await self._fetch(order, part, report)
                break
            except _Interrupted as exc:
                problem = str(exc)
                log.info("download of %s interrupted (%s); resuming", name, exc)
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        else:
            raise UpdateFailed(
                f"download failed {self.settings.download_attempts} times: {problem}"
            )
        digest = await asyncio.to_thread(_sha256, part)
        if digest != manifest.sha256:
            part.unlink(missing_ok=True)  # a bad file must not be resumed either
            raise UpdateFailed(
                f"the downloaded file's sha256 {digest} is not the signed {manifest.sha256}"
            )
        return part

    async def _fetch(self, order: UpdateOrder, part: Path, report: Report) -> None:
        size = order.manifest.size
        have = _partial_size(part, size)
        if have == size:
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        if (token := self._node_token()) is not None:
            headers["Authorization"] = f"Bearer {token}"
        timeout = httpx.Timeout(self.settings.http_timeout)
        try:
            async with (
                httpx.AsyncClient(timeout=timeout) as client,
                client.stream("GET", order.download_url, headers=headers) as response,
            ):
                have = _resume_point(response, have)
                mode = "ab" if have else "wb"
                with part.open(mode) as file:
                    async for chunk in response.aiter_bytes():
                        if have + len(chunk) > size:
                            _discard(part)
                            raise UpdateFailed(f"the server sent more than the signed {size} bytes")
                        file.write(chunk)
                        previous, have = have, have + len(chunk)
                        if have * 100 // size != previous * 100 // size:
                            await report(self._state(order, "downloading", have * 100 // size))
        except httpx.TransportError as exc:
            raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
        if have < size:
            raise _Interrupted(f"the download ended at {have} of {size} bytes")

    # ---- install and switch --------------------------------------------------------------

    def _unpack(self, archive: Path, manifest: Manifest) -> None:
        home = self.versions / manifest.component
        private_dir(home)
        staging = home / f".staging-{manifest.version}"
        shutil.rmtree(staging, ignore_errors=True)  # left by an install that died midway
        try:
            extract(archive, staging)
            info = _package_info(staging, manifest)
        except (UnsafePackage, UpdateFailed) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            archive.unlink(missing_ok=True)
            raise UpdateFailed(str(exc)) from exc
        target = home / info.version
        shutil.rmtree(target, ignore_errors=True)  # never the current one: that is refused
        staging.rename(target)
        os.utime(target)  # its install time orders the versions kept

    def _switch(self, component: str, version: str | None) -> str | None:
        """Point `current` at `version` (None: no package, the daemon's own agent) in one
        rename; returns the version it pointed at."""
        home = self.versions / component
        link = home / "current"
        previous = os.readlink(link) if link.is_symlink() else None
        if version is None:
            link.unlink(missing_ok=True)
        else:
            temporary = home / ".current.new"
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(version)
            temporary.replace(link)
        _sync_dir(home)
        return previous

    def _current_info(self, component: str) -> PackageInfo | None:
        link = self.versions / component / "current"
        if not link.is_symlink():
            return None
        try:
            return PackageInfo.model_validate_json((link / INFO_FILE).read_bytes())
        except (OSError, ValidationError):
            log.warning("%s does not hold a usable package; ignoring it", link)
            return None

    def _prune(self, component: str) -> None:
        """Keep the current version and the most recently installed others, `keep_versions`
        in all."""
        home = self.versions / component
        current = os.readlink(home / "current") if (home / "current").is_symlink() else None
        others = [
            path
            for path in home.iterdir()
            if path.is_dir()
            and not path.is_symlink()
            and not path.name.startswith(".")
            and path.name != current
        ]
        others.sort(key=lambda path: path.stat().st_mtime, reverse=True)
        for old in others[max(self.settings.keep_versions - 1, 0) :]:
            log.info("removing %s %s", component, old.name)
            shutil.rmtree(old, ignore_errors=True)

    # ---- agent ---------------------------------------------------------------------------

    def agent_launch(self) -> tuple[list[str], str]:
        """The agent's command line and version: the current package's, or the daemon's own
        agent when no package is installed."""
        arguments = list(self.agent.arguments)
        info = self._current_info("agent")
        if info is None:
            return [sys.executable, "-m", AGENT_MODULE, *arguments], package_version()
        entry = self.versions / "agent" / "current" / info.entry
        return [sys.executable, str(entry), *arguments], info.version

    async def _verify_agent(self, manifest: Manifest, previous: str | None) -> None:
        supervisor = self.agent.supervisor
        try:
            await self._restart_agent()
            await self._healthy(manifest.version)
        except UpdateFailed as exc:
            self._switch("agent", previous)
            await self._restart_agent()
            shutil.rmtree(self.versions / "agent" / manifest.version, ignore_errors=True)
            back = previous or f"the daemon's own {package_version()}"
            raise RolledBack(f"{exc}; switched back to {back}") from exc
        log.info("agent %s running, pid %s", manifest.version, supervisor.pid)

    async def _restart_agent(self) -> None:
        command, version = self.agent_launch()
        self.agent.supervisor.replace(command, version)
        self.agent.supervisor.request_restart()

    async def _healthy(self, version: str) -> None:
        """The agent answers /health with `version` from the pid the supervisor started;
        an agent that exits first has failed, without waiting out the timeout."""
        supervisor = self.agent.supervisor
        new_agent = supervisor.starts + 1  # the restart requested starts the new version
        deadline = time.monotonic() + self.settings.health_timeout
        seen = "no answer"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                pid = supervisor.pid
                if supervisor.starts > new_agent or (
                    supervisor.starts == new_agent and pid is None
                ):
                    raise UpdateFailed(f"the agent {version} exited: {supervisor.last_error}")
                if supervisor.starts == new_agent and pid is not None:
                    with contextlib.suppress(httpx.HTTPError, ValueError):
                        body = (await client.get(self.agent.health_url)).json()
                        seen = f"version {body.get('version')!r}, pid {body.get('pid')}"
                        if body.get("version") == version and body.get("pid") == pid:
                            return
                await asyncio.sleep(0.2)
        error = supervisor.last_error or seen
        raise UpdateFailed(
            f"the agent {version} did not answer /health within "
            f"{self.settings.health_timeout:g}s ({error})"
        )

    # ---- daemon --------------------------------------------------------------------------

    def installed_daemon(self) -> list[str] | None:
        """The command line that runs the installed daemon package with this process's
        arguments, or None when none is installed or it is the code running now."""
        info = self._current_info("daemon")
        if info is None or info.version == package_version():
            return None
        entry = self.versions / "daemon" / "current" / info.entry
        return [sys.executable, str(entry), *self.settings.argv[1:]]

    def start_installed_daemon(self) -> None:
        """At start: become the installed daemon package, if it is not what runs now (the
        daemon was started from its original installation, e.g. by its service manager)."""
        argv = self.installed_daemon()
        if argv is None:
            return
        log.info("starting the installed daemon: %s", argv)
        try:
            self._exec_daemon(argv)
        except OSError as exc:
            log.error("cannot start the installed daemon (%s); running %s", exc, package_version())

    async def _reexecute(
        self, order: UpdateOrder, previous: str | None, command_id: str | None
    ) -> None:
        """Replace this process with the new daemon, same arguments. The outcome stays
        `verifying` until the new daemon starts and confirms (confirm_started)."""
        manifest = order.manifest
        argv = self.installed_daemon()
        assert argv is not None  # just switched to a version that is not this one
        self._remember(
            UpdateOutcome(
                state=self._state(order, "verifying", 0),
                component="daemon",
                version=manifest.version,
                previous=previous,
                command_id=command_id,
            )
        )
        if self._before_exec is not None:
            await self._before_exec()
        log.info("re-executing as daemon %s: %s", manifest.version, argv)
        try:
            self._exec_daemon(argv)
        except OSError as exc:
            self._switch("daemon", previous)
            raise RolledBack(f"could not start the new daemon: {exc}") from exc

    def confirm_started(self) -> list[UpdateOutcome]:
        """At start: settle daemon updates left `verifying` by a re-execution. Running the
        new version confirms it; running another means the new one did not stay up, so the
        link goes back to what it was."""
        settled: list[UpdateOutcome] = []
        for path in self._outcome_files():
            outcome = self._read_outcome(path)
            if outcome is None or outcome.state.status != "verifying":
                continue
            if outcome.component != "daemon":
                continue
            state = outcome.state
            if outcome.version == package_version():
                state = state.model_copy(update={"status": "success", "progress": 100})
            else:
                self._switch("daemon", outcome.previous)
                reason = f"daemon {outcome.version} did not stay up; running {package_version()}"
                state = state.model_copy(update={"status": "rollback", "message": reason})
            outcome = outcome.model_copy(update={"state": state})
            self._remember(outcome)
            settled.append(outcome)
        return settled

    # ---- outcomes ------------------------------------------------------------------------

    def _state(
        self, order: UpdateOrder, status: UpdateStatus, progress: int, message: str = ""
    ) -> UpdateState:
        return UpdateState(
            record_id=order.record_id,
            status=status,
            progress=progress,
            message=message[:MAX_MESSAGE],
        )

    def _remembered(self, record_id: int) -> UpdateOutcome | None:
        return self._read_outcome(self.outcomes / f"{record_id}.json")

    def _read_outcome(self, path: Path) -> UpdateOutcome | None:
        try:
            return UpdateOutcome.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError):
            log.warning("%s is not a readable update outcome; ignoring it", path)
            return None

    def _remember(self, outcome: UpdateOutcome) -> None:
        private_dir(self.outcomes)
        path = self.outcomes / f"{outcome.state.record_id}.json"
        write_private(path, outcome.model_dump_json().encode())
        for old in self._outcome_files()[:-KEEP_OUTCOMES]:
            old.unlink(missing_ok=True)

    def _outcome_files(self) -> list[Path]:
        if not self.outcomes.is_dir():
            return []
        return sorted(self.outcomes.glob("*.json"), key=lambda path: path.stat().st_mtime)


def _resume_point(response: httpx.Response, have: int) -> int:
    """Where the body starts: `have` when the server honoured the Range, 0 when it sends the
    whole file again."""
    if response.status_code == 206 and have:
        start = response.headers.get("content-range", "").removeprefix("bytes ").split("-")[0]
        if start == str(have):
            return have
        raise _Interrupted(f"the server resumed at {start!r}, not at byte {have}")
    if response.status_code == 200:
        return 0
    if response.status_code >= 500 or response.status_code == 416:
        raise _Interrupted(f"the download answered HTTP {response.status_code}")
    raise UpdateFailed(f"the download answered HTTP {response.status_code}")


def _package_info(directory: Path, manifest: Manifest) -> PackageInfo:
    try:
        info = PackageInfo.model_validate_json((directory / INFO_FILE).read_bytes())
    except (OSError, ValidationError) as exc:
        raise UpdateFailed(f"the package has no usable {INFO_FILE}: {exc}") from exc
    if (info.component, info.version) != (manifest.component, manifest.version):
        raise UpdateFailed(
            f"the package holds {info.component} {info.version}, "
            f"the manifest names {manifest.component} {manifest.version}"
        )
    entry = directory / info.entry
    if entry.is_symlink() or not entry.is_file():
        raise UpdateFailed(f"the package's entry point {info.entry} is not a file")
    return info


def _partial_size(part: Path, size: int) -> int:
    """How much of the file an earlier attempt left (none if more than the whole)."""
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        _discard(part)
        return 0
    return have


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
