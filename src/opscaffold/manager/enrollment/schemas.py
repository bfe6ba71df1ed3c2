from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

from opscaffold.manager.kit.clock import rfc3339
from opscaffold.manager.kit.storable import storable_time

ExpiresAt = Annotated[AwareDatetime, AfterValidator(storable_time)]


class EnrollmentTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    expires_at: Annotated[AwareDatetime, AfterValidator(storable_time)] | None = Field(
        default=None, description="RFC 3339; none: never"
    )
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000)


class EnrollmentTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    token_prefix: str = Field(description="first characters, to recognise a token")
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime

    @field_serializer("expires_at", "revoked_at", "last_used_at", "created_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class EnrollmentTokenCreated(EnrollmentTokenRead):
    token: str = Field(description="the secret itself, shown only in this response")
