"""Between protobuf messages and our rows: validation of what a daemon says about itself."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable
from datetime import UTC
from typing import Any

from google.protobuf.message import Message

from opscaffold.manager.errors import InvalidArgument
from opscaffold.manager.models import NodeCommand
from opscaffold.manager.rpc.identity import valid_uuid
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb

DEFAULT_AGENT_PORT = 9100
LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$")
MAX_LABELS = 64
# A key a daemon draws at random: short ones could be guessed.
MIN_ENROLLMENT_KEY, MAX_ENROLLMENT_KEY = 32, 256
# The design's UpdateEvent.event_type names; our own command types pass through as they are.
EVENT_TYPES = {"update": "version_update", "config": "config_change"}
LIMITS = {"hostname": 128, "os": 32, "arch": 16, "kernel_version": 64, "daemon_version": 32}


def check_text(message: Message, prefix: str = "") -> None:
    """Refuse a message with a NUL character in any of its strings, however deep (map keys and
    values, repeated and nested fields): PostgreSQL cannot store one, and a row it refuses
    would fail the whole batch it joined. Protobuf itself guarantees valid UTF-8."""
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                _check_string(f"{name} key", key)
                _check_value(f"{name}[{str(key)[:32]!r}]", item)
        elif field.is_repeated:
            for index, item in enumerate(value):
                _check_value(f"{name}[{index}]", item)
        else:
            _check_value(name, value)


def _check_value(name: str, value: object) -> None:
    if isinstance(value, Message):
        check_text(value, f"{name}.")
    elif isinstance(value, str):
        _check_string(name, value)


def _check_string(name: str, value: object) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise InvalidArgument(f"{name} must not contain NUL characters")


def _text(name: str, value: str, *, required: bool = False) -> str | None:
    value = value.strip()
    if required and not value:
        raise InvalidArgument(f"{name} is required")
    if len(value) > LIMITS[name]:
        raise InvalidArgument(f"{name} is longer than {LIMITS[name]} characters")
    return value or None


def enrollment_key_hash(request: pb.RegisterRequest) -> str | None:
    """SHA-256 of the daemon's enrollment key, or None when it sent none (a daemon built from
    the design's proto alone)."""
    key = request.enrollment_key
    if not key:
        return None
    if not MIN_ENROLLMENT_KEY <= len(key) <= MAX_ENROLLMENT_KEY:
        raise InvalidArgument(
            f"enrollment_key must be {MIN_ENROLLMENT_KEY} to {MAX_ENROLLMENT_KEY} characters"
        )
    return hashlib.sha256(key.encode()).hexdigest()


def _ip(value: str, peer: str) -> str:
    if not value:
        return peer
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise InvalidArgument(f"ip '{value[:45]}' is not an IP address") from exc


def labels_of(request: pb.RegisterRequest) -> dict[str, str]:
    labels = dict(request.labels)
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            raise InvalidArgument(f"label key '{key[:63]}' is not allowed")
        if len(value) > 191:
            raise InvalidArgument(f"label '{key}' has a value longer than 191 characters")
    return labels


def registration(request: pb.RegisterRequest, peer_ip: str) -> dict[str, Any]:
    """The nodes columns a daemon may set about itself, validated."""
    if not valid_uuid(request.uuid):
        raise InvalidArgument("uuid must be a UUID like 123e4567-e89b-12d3-a456-426614174000")
    port = request.port or DEFAULT_AGENT_PORT
    if not 1 <= port <= 65535:
        raise InvalidArgument(f"port={request.port} is outside 1..65535")
    for name in ("cpu_cores", "memory_total", "disk_total"):
        if getattr(request, name) < 0:
            raise InvalidArgument(f"{name} must not be negative")
    return {
        "uuid": request.uuid.lower(),
        "hostname": _text("hostname", request.hostname, required=True),
        "ip": _ip(request.ip, peer_ip),
        "peer_ip": peer_ip,
        "port": port,
        "os": _text("os", request.os),
        "arch": _text("arch", request.arch),
        "kernel_version": _text("kernel_version", request.kernel_version),
        "daemon_version": _text("daemon_version", request.daemon_version),
        "cpu_cores": request.cpu_cores or None,
        "memory_total": request.memory_total or None,
        "disk_total": request.disk_total or None,
    }


def _payload(command: NodeCommand) -> bytes:
    return json.dumps(command.payload, separators=(",", ":")).encode()


def command_message(command: NodeCommand) -> pb.Command:
    return pb.Command(
        id=command.id,
        type=command.type,
        payload=_payload(command),
        expires_at=int(command.expires_at.replace(tzinfo=UTC).timestamp()),
    )


def update_event(command: NodeCommand) -> pb.UpdateEvent:
    """The design's event for a command; an update order (protocol.update.UpdateOrder) fills
    its package fields from the signed manifest, with the signature decoded."""
    payload = command.payload or {}
    manifest = payload.get("manifest")
    package: dict[str, Any] = manifest if isinstance(manifest, dict) else {}
    return pb.UpdateEvent(
        event_type=EVENT_TYPES.get(command.type, command.type),
        component=str(package.get("component", "")),
        version=str(package.get("version", "")),
        download_url=str(payload.get("download_url", "")),
        hash_sha256=str(package.get("sha256", "")),
        signature=_signature(payload.get("signature")),
        command_id=command.id,
        payload=_payload(command),
    )


def _signature(value: object) -> bytes:
    try:
        return base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        return b""


MAX_OUTCOMES = 1000  # per message, as for acknowledgements


def outcomes(
    command_ids: Iterable[str], results: Iterable[pb.CommandResult]
) -> dict[str, str | None]:
    """What a daemon reports of its commands: id → None (done) or its reason for failing.

    An id acknowledged without a result was carried out (daemons of the first protocol send
    ids only); a result overrides the id list.
    """
    reported: dict[str, str | None] = dict.fromkeys(command_ids)
    for result in results:
        reason = result.error.strip() or "the daemon gave no reason"
        reported[result.command_id] = None if result.ok else reason
    return dict(list(reported.items())[:MAX_OUTCOMES])
