"""Files only their owner may read: the data directory holds password hashes, token digests
and secrets, so nothing in it is created readable by other local users, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as the owner's only; an existing one is kept as
    its owner set it (an operator may share a parent on purpose)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # another process made it first
            continue
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty unless it exists, and make it the owner's only either way."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    os.chmod(path, PRIVATE_FILE)
    return path
