"""The key task envelopes are signed with.

Kept like the JWT secrets and the package key: named by `task.signing_key_file`, or generated
at first start into data_dir/secrets/task_signing_key.pem (mode 0600). Daemons pin its public
key at install (`ops-daemon run --manager-key FILE`) or learn it once, at first enrollment.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from opscaffold.manager.config import ConfigError, Settings
from opscaffold.manager.kit.files import PRIVATE_FILE, private_dir
from opscaffold.protocol import task as protocol

GENERATED_NAME = "task_signing_key.pem"


@dataclass(frozen=True, slots=True)
class TaskKey:
    private: ed25519.Ed25519PrivateKey
    public_pem: bytes
    fingerprint: str

    @classmethod
    def load(cls, settings: Settings) -> TaskKey:
        path = key_path(settings)
        if settings.task.signing_key_file is None:
            ensure_key_file(path)
        try:
            key = protocol.load_private_key(path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError([f"task.signing_key_file: cannot use {path}: {exc}"]) from exc
        public = key.public_key()
        return cls(key, protocol.public_pem(public), protocol.fingerprint(public))

    def seal(self, body: protocol.EnvelopeBody) -> protocol.Envelope:
        return protocol.seal(body, self.private)


def key_path(settings: Settings) -> Path:
    configured = settings.task.signing_key_file
    return configured if configured is not None else settings.data_dir / "secrets" / GENERATED_NAME


def ensure_key_file(path: Path) -> bool:
    """Write a new key to `path` unless one is there; written whole, then linked into place,
    so a second process starting at once reads no file or a complete one."""
    if path.exists():
        return False
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(protocol.private_pem(protocol.generate_key()))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)
