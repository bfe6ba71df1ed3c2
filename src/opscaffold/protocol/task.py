"""Tasks as the Manager signs them and an Agent runs them: the content of each task type, the
signed envelope of one execution on one node, and the result the node reports.

The envelope is what travels (today inside a `task` command through the outbox; later straight
to the Agent's port): its `body` is a JSON text, and the signature is Ed25519 over exactly those
bytes, so nothing has to be re-serialised identically to be checked. The Agent trusts one
public key, pinned on the node (ARCHITECTURE §7); a key is named by its fingerprint, SHA-256 of
its DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

TaskType = Literal["script", "file", "service", "custom"]
TASK_TYPES: tuple[TaskType, ...] = ("script", "file", "service", "custom")
ResultStatus = Literal["running", "success", "failed", "timeout", "cancelled"]
FINAL_RESULTS: frozenset[str] = frozenset({"success", "failed", "timeout", "cancelled"})
MAX_SCRIPT_BYTES = 1024 * 1024
MAX_ARGS = 1000
MAX_FILE_BYTES = 1024 * 1024
MAX_TIMEOUT = 86_400
MAX_ENVELOPE_BYTES = 4 * MAX_SCRIPT_BYTES  # JSON escaping may grow a script
SERVICE_ACTIONS = ("start", "stop", "restart", "status", "enable", "disable")
MASK = "******"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


# -- content of each task type ------------------------------------------------------------
def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    if "\x00" in value:
        raise ValueError("must not contain NUL")
    return value


def _interpreter(value: str) -> str:
    _absolute_path(value)
    if any(c.isspace() for c in value):
        raise ValueError("must be a path without spaces (arguments go in args)")
    return value


def _script(value: str) -> str:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SCRIPT_BYTES:
        raise ValueError(f"must be at most {MAX_SCRIPT_BYTES} bytes of UTF-8")
    return value


def _env_names(value: dict[str, EnvValue]) -> dict[str, EnvValue]:
    for name in value:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name[:64]!r} is not an environment variable name")
    return value


AbsolutePath = Annotated[str, Field(max_length=4096), AfterValidator(_absolute_path)]


class EnvValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(max_length=32_768)
    secret: bool = Field(False, description="masked in reads and in the captured output")


class ScriptContent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    interpreter: Annotated[str, Field(max_length=4096), AfterValidator(_interpreter)] = "/bin/sh"
    script: Annotated[str, AfterValidator(_script)]
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=MAX_ARGS
    )
    env: Annotated[dict[str, EnvValue], AfterValidator(_env_names)] = Field(
        default_factory=dict, max_length=256
    )
    workdir: AbsolutePath | None = None


class FileContent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    content: str = Field(max_length=MAX_FILE_BYTES)
    dest: AbsolutePath
    mode: str = Field("0644", pattern=r"^0?[0-7]{3,4}$")
    owner: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_.-]{0,31}(:[a-z_][a-z0-9_.-]{0,31})?$")
    overwrite: bool = True


class ServiceContent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9@._:-]{1,255}$")
    action: Literal["start", "stop", "restart", "status", "enable", "disable"]


class CustomContent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    handler: str = Field(pattern=r"^[a-z][a-z0-9_.]{0,63}$")
    params: dict[str, Any] = Field(default_factory=dict)


TaskContent = ScriptContent | FileContent | ServiceContent | CustomContent
CONTENT_MODELS: dict[str, type[BaseModel]] = {
    "script": ScriptContent,
    "file": FileContent,
    "service": ServiceContent,
    "custom": CustomContent,
}


class ContentError(ValueError):
    """Content that does not fit its task type; `problems` name each field (`content.x`)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_content(task_type: str, content: Any) -> TaskContent:
    """The content of a task of `task_type`, validated; ContentError naming every bad field."""
    model = CONTENT_MODELS.get(task_type)
    if model is None:
        raise ContentError([f"type: must be one of {list(TASK_TYPES)}"])
    try:
        parsed: TaskContent = TypeAdapter(model).validate_python(content)  # type: ignore[assignment]
    except ValidationError as exc:
        raise ContentError(
            [
                f"{'.'.join(['content', *map(str, e['loc'])])}: {e['msg']}"
                for e in exc.errors(include_url=False)
            ]
        ) from exc
    return parsed


def masked(task_type: str, content: dict[str, Any]) -> dict[str, Any]:
    """`content` with the values of secret environment variables replaced by MASK."""
    if task_type != "script" or not isinstance(content.get("env"), dict):
        return content
    env = {
        name: {**item, "value": MASK} if isinstance(item, dict) and item.get("secret") else item
        for name, item in content["env"].items()
    }
    return {**content, "env": env}


# -- the envelope -------------------------------------------------------------------------
class EnvelopeBody(BaseModel):
    """What the Manager vouches for: this execution, on this node, of this content, until."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_id: str = Field(pattern=r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
    task_id: int = Field(ge=1)
    node_id: int = Field(ge=1)
    node_uuid: str = Field(min_length=1, max_length=64)
    type: TaskType
    content: dict[str, Any]
    timeout: int = Field(ge=1, le=MAX_TIMEOUT)
    issued_at: int = Field(description="Unix seconds")
    not_after: int = Field(description="Unix seconds; an envelope later than this is refused")

    def typed_content(self) -> TaskContent:
        return parse_content(self.type, self.content)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    body: str = Field(max_length=MAX_ENVELOPE_BYTES, description="EnvelopeBody as JSON text")
    signature: str = Field(description="base64 of Ed25519 over the UTF-8 bytes of body")
    key_id: str = Field(pattern=r"^[0-9a-f]{64}$", description="fingerprint of the signing key")


class EnvelopeRefused(Exception):
    """An envelope this node must not run: forged, for another node, expired, or malformed."""


def seal(body: EnvelopeBody, key: ed25519.Ed25519PrivateKey) -> Envelope:
    text = json.dumps(body.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False)
    signature = key.sign(text.encode())
    return Envelope(
        body=text,
        signature=base64.b64encode(signature).decode(),
        key_id=fingerprint(key.public_key()),
    )


def open_envelope(envelope: Envelope, trusted: ed25519.Ed25519PublicKey) -> EnvelopeBody:
    """The body, once the signature is the trusted key's; EnvelopeRefused otherwise. Node and
    expiry are the caller's to check (it knows who it is and what time it is)."""
    try:
        signature = base64.b64decode(envelope.signature, validate=True)
        trusted.verify(signature, envelope.body.encode())
    except (binascii.Error, InvalidSignature) as exc:
        raise EnvelopeRefused("signature: not made by the Manager key this node trusts") from exc
    try:
        body = EnvelopeBody.model_validate_json(envelope.body)
        body.typed_content()
    except (ValidationError, ContentError) as exc:
        raise EnvelopeRefused(f"body: not a valid task: {exc}") from exc
    return body


# -- keys ---------------------------------------------------------------------------------
def generate_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def private_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def load_public_key(pem: bytes) -> ed25519.Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def fingerprint(key: ed25519.Ed25519PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


# -- results ------------------------------------------------------------------------------
class TaskResult(BaseModel):
    """What a node says of one execution: `running` once started, then one final state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_id: str
    status: ResultStatus
    exit_code: int | None = None
    output: str = ""
    truncated: bool = False
    error: str = ""
    started_at: int = 0  # Unix seconds
    finished_at: int = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL_RESULTS


class CancelOrder(BaseModel):
    """What a `task_cancel` command carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_id: str = Field(pattern=r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")


class TaskOrder(BaseModel):
    """What a `task` command carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    envelope: Envelope
