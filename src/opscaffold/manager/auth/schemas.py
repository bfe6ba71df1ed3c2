from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from opscaffold.manager.user.schemas import UserRead


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenPair(BaseModel):
    token: str = Field(description="access token, sent as 'Authorization: Bearer <token>'")
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_expires_in: int


class LoginResult(TokenPair):
    user: UserRead
