"""Secrets the embedded default generates on first start and keeps under data_dir (mode 0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from opscaffold.manager.kit.files import private_dir


def load_or_create(data_dir: Path, name: str, *, nbytes: int = 48) -> str:
    """Read data_dir/secrets/<name>, creating it with a random value the first time."""
    folder = private_dir(data_dir / "secrets")
    path = folder / name
    try:
        # O_EXCL: two processes starting at once agree on one value instead of racing.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
