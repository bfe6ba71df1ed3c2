"""The node's identity on disk: `node.json` in a private state directory.

The uuid is generated once and never changes: it is how the Manager knows this machine across
restarts. So is the enrollment key, a secret sent with every Register: only the daemon holding
it may enroll its uuid again when the answer to its first enrollment was lost. The node token
and the key are secrets, so the directory is 0700 and the file 0600, written
atomically so a crash mid-write never leaves a half file (which would cost the identity).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid as uuid_lib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

STATE_FILE = "node.json"


class StateError(Exception):
    """The state on disk cannot be used as it is; a person must look (never regenerate)."""


class NodeState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uuid: str
    node_id: int | None = None
    node_token: str | None = None
    enrollment_key: str = Field(default_factory=lambda: new_enrollment_key())

    @field_validator("uuid")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return str(uuid_lib.UUID(value))


def new_enrollment_key() -> str:
    return secrets.token_urlsafe(32)


def private_dir(path: Path) -> None:
    """Create `path` (and parents) and make it 0700 even if it existed with laxer modes."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, mode 0600 from the first byte on."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover temporary file may have had another mode
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    # The rename is durable only once the directory entry is.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE

    def load_or_create(self, wanted_uuid: str | None = None) -> NodeState:
        """The stored identity, or a new one (uuid `wanted_uuid` or random) saved at once.

        `wanted_uuid` is for mTLS, where the certificate names the node: a stored identity
        with another uuid is a mistake to surface, not to overwrite.
        """
        private_dir(self.directory)
        state = self._load()
        if state is None:
            state = NodeState(uuid=wanted_uuid or str(uuid_lib.uuid4()))
            self.save(state)
        elif "enrollment_key" not in state.model_fields_set:  # kept by an older daemon
            self.save(state)  # the key drawn on loading, before any Register sends it
        elif wanted_uuid and state.uuid != str(uuid_lib.UUID(wanted_uuid)):
            raise StateError(
                f"{self.path} belongs to node {state.uuid}, not {wanted_uuid}; "
                "use another state directory or remove the file"
            )
        return state

    def save(self, state: NodeState) -> None:
        write_private(self.path, state.model_dump_json(indent=2).encode() + b"\n")

    def _load(self) -> NodeState | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):
            self.path.chmod(0o600)
        try:
            return NodeState.model_validate_json(raw)
        except ValidationError as exc:
            raise StateError(f"{self.path} is not a valid node state: {exc}") from exc
