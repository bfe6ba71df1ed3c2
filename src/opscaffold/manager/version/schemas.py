from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from opscaffold.manager.kit.clock import rfc3339
from opscaffold.protocol.manifest import (
    ARCH_NAMES,
    OS_NAMES,
    ArchName,
    Manifest,
    OsName,
    VersionText,
    timestamp,
)

Component = Literal["daemon", "agent"]
MAX_NOTES = 16_000  # characters; a MySQL TEXT holds 65,535 bytes of up-to-4-byte characters
MAX_SIGNATURE = 2048  # base64 characters: an RSA signature of up to 8192 bits is 1,368


class VersionUpload(BaseModel):
    """The text fields of `POST /versions` (multipart/form-data, beside the `file` part)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    component: Component
    version: VersionText = Field(max_length=32, description="like 1.4.2 or 2.0.0-rc.1")
    os: OsName = Field(max_length=32, description=f"one of {', '.join(sorted(OS_NAMES))}")
    arch: ArchName = Field(max_length=16, description=f"one of {', '.join(sorted(ARCH_NAMES))}")
    release_notes: str | None = Field(default=None, max_length=MAX_NOTES)
    signature: str | None = Field(
        default=None,
        max_length=MAX_SIGNATURE,
        description="base64 RSA signature made offline over the manifest (`ops-manager keys "
        "sign`); none: the Manager signs with its own key",
    )
    created_at: str | None = Field(
        default=None,
        validate_default=True,
        description="the manifest's created_at the offline signature covers (RFC 3339, UTC, "
        "whole seconds, e.g. 2026-12-05T06:00:00Z); only with `signature`",
    )

    @field_validator("signature")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("must be base64") from None
        return value

    @field_validator("created_at")
    @classmethod
    def _created_at(cls, value: str | None, info: ValidationInfo) -> str | None:
        # An offline signature covers a created_at the Manager cannot guess; a created_at
        # without one would let a client backdate what the Manager itself signs.
        if "signature" not in info.data:
            return value  # the signature itself is refused
        signed = info.data["signature"] is not None
        if value is None:
            if signed:
                raise ValueError("is required with a signature: the manifest's created_at")
            return None
        if not signed:
            raise ValueError("is taken only with a signature")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None or timestamp(parsed) != value:
            raise ValueError(
                "must be RFC 3339 in UTC with whole seconds, like 2026-12-05T06:00:00Z"
            )
        return value

    @property
    def signature_bytes(self) -> bytes | None:
        return None if self.signature is None else base64.b64decode(self.signature)


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    component: Component
    version: str
    os: str
    arch: str
    file_name: str = Field(description="the uploaded file's name, for display only")
    file_size: int
    hash_sha256: str
    release_notes: str | None
    is_latest: bool
    key_fingerprint: str | None = Field(description="SHA-256 of the signing key's public key")
    created_by: int
    created_at: datetime

    @field_serializer("created_at")
    def _times(self, value: datetime) -> str | None:
        return rfc3339(value)


class VersionDetail(VersionRead):
    manifest: Manifest | None = Field(
        description="what the signature covers: RSA PKCS#1 v1.5 with SHA-256 over this "
        "object's canonical JSON (sorted keys, no spaces, UTF-8)"
    )
    signature: str = Field(description="base64")
