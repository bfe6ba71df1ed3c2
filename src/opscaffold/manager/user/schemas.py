from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, SecretStr, field_serializer

from opscaffold.manager.kit.clock import rfc3339

Role = Literal["admin", "operator", "viewer"]
Username = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str | None
    phone: str | None
    role: Role
    status: int = Field(description="1 enabled, 0 disabled")
    last_login_at: datetime | None
    last_login_ip: str | None
    created_at: datetime
    updated_at: datetime

    @field_serializer("last_login_at", "created_at", "updated_at")
    def _times(self, value: datetime | None) -> str | None:
        return rfc3339(value)


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Username
    password: SecretStr = Field(max_length=256)
    email: EmailStr | None = Field(default=None, max_length=128)
    phone: str | None = Field(default=None, max_length=20, pattern=r"^\+?[0-9 ()-]{3,20}$")
    role: Role = "viewer"
    status: Literal[0, 1] = 1


class UserUpdate(BaseModel):
    """Only the fields given change; a new password ends the user's sessions."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = Field(default=None, max_length=128)
    phone: str | None = Field(default=None, max_length=20, pattern=r"^\+?[0-9 ()-]{3,20}$")
    role: Role | None = None
    status: Literal[0, 1] | None = None
    password: SecretStr | None = Field(default=None, max_length=256)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: SecretStr = Field(max_length=256)
    new_password: SecretStr = Field(max_length=256)
