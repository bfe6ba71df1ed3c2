"""An order to install a package on a node, and the states the node reports while doing it.

The order is what the Manager's `update` command carries: the signed manifest, its signature
(base64, as the versions table stores it), where to download the file, and whether going to
an older version is meant (a rollback). The states are those of the Manager's update records
(spec §3.2.7) after `pending`, which is the Manager's own.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from opscaffold.protocol.manifest import Manifest

UpdateStatus = Literal["downloading", "installing", "verifying", "success", "failed", "rollback"]
FINAL_STATUSES: frozenset[str] = frozenset({"success", "failed", "rollback"})
MAX_MESSAGE = 1000


class UpdateOrder(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    record_id: int = Field(ge=1, description="the update record this order carries out")
    manifest: Manifest
    signature: str = Field(description="base64 of the manifest's signature")
    download_url: str = Field(pattern=r"^https?://", max_length=2048)
    rollback: bool = Field(False, description="going to an older version is meant")

    @field_validator("signature")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError("must be standard base64") from exc
        return value

    def signature_bytes(self) -> bytes:
        return base64.b64decode(self.signature, validate=True)


class UpdateState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    record_id: int
    status: UpdateStatus
    progress: int = Field(0, ge=0, le=100)
    message: str = Field("", max_length=MAX_MESSAGE, description="the reason, when not success")

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES
