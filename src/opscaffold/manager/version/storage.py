"""Package files on local disk (`storage.type: local`).

Files are named by the Manager (a random hex name): nothing a client sends reaches a path. An
upload is written to `<root>/.incoming/` while it arrives, hashed on the way, and moved into
place with one rename (atomic on one file system) only once it is complete and accepted; a
partial or refused upload is removed. Writes go through a thread so a slow disk never stalls
the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
import uuid
from pathlib import Path

from opscaffold.manager.config import StorageSettings
from opscaffold.manager.kit.files import PRIVATE_FILE, private_dir
from opscaffold.manager.logging import get_logger

INCOMING = ".incoming"
_NAME = re.compile(r"[0-9a-f]{32}\.pkg")
# A partial file older than this belongs to no upload still arriving (uploads are bounded by
# server.http.read_timeout); one left by a Manager that died is removed at start.
STALE_PARTIAL_S = 24 * 3600
# A placed file no version names is left by an upload whose transaction did not commit (the
# file is placed just before the commit). Younger ones may belong to a commit on its way.
ORPHAN_AFTER_S = 3600
log = get_logger("opscaffold.version.storage")


class Incoming:
    """One upload being written: its bytes, size and SHA-256 so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._hash = hashlib.sha256()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        self._file = os.fdopen(fd, "wb")

    async def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)
        await asyncio.to_thread(self._file.write, data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def finish(self) -> None:
        """Flush the file to disk: a package accepted must survive a crash."""
        await asyncio.to_thread(self._sync_and_close)

    def _sync_and_close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class PackageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, storage: StorageSettings) -> PackageStore:
        assert storage.local.path is not None  # resolved by Settings (under data_dir)
        return cls(storage.local.path)

    def prepare(self) -> None:
        """Create the folders and remove partial files a stopped Manager left behind."""
        incoming = private_dir(self.root / INCOMING)
        cutoff = time.time() - STALE_PARTIAL_S
        for leftover in incoming.glob("*.part"):
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
            except FileNotFoundError:
                continue

    def incoming(self) -> Incoming:
        folder = private_dir(self.root / INCOMING)
        return Incoming(folder / f"{uuid.uuid4().hex}.part")

    @staticmethod
    def new_name() -> str:
        return f"{uuid.uuid4().hex}.pkg"

    def path_of(self, name: str) -> Path:
        # Names come from our own rows; anything else is refused rather than resolved.
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a package file name: {name!r}")
        return self.root / name

    def place(self, upload: Incoming, name: str) -> None:
        """Move a finished upload to its final name in one step."""
        target = self.path_of(name)
        os.replace(upload.path, target)
        _sync_dir(self.root)

    def stored_names(self, older_than_s: float) -> list[str]:
        """The package files placed more than `older_than_s` seconds ago."""
        cutoff = time.time() - older_than_s
        names = []
        for path in self.root.glob("*.pkg"):
            try:
                if _NAME.fullmatch(path.name) and path.stat().st_mtime < cutoff:
                    names.append(path.name)
            except FileNotFoundError:
                continue
        return names

    def remove(self, name: str) -> None:
        try:
            self.path_of(name).unlink(missing_ok=True)
        except (OSError, ValueError):
            log.exception("could not remove a package file", file=name)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
