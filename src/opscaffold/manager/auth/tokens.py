"""JWT access and refresh tokens: separate secrets, one pinned algorithm, every claim checked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import jwt

from opscaffold.manager.config import JwtSettings
from opscaffold.manager.errors import Unauthenticated

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    username: str
    role: str
    family_id: str
    jti: str
    expires_at: datetime  # naive UTC


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: TokenClaims


class TokenCodec:
    def __init__(self, settings: JwtSettings, access_secret: str, refresh_secret: str) -> None:
        self._settings = settings
        self._secrets: dict[TokenType, str] = {"access": access_secret, "refresh": refresh_secret}
        self._ttl = {"access": settings.access_ttl, "refresh": settings.refresh_ttl}

    def issue(
        self, kind: TokenType, *, user_id: int, username: str, role: str, family_id: str
    ) -> IssuedToken:
        now = datetime.now(UTC).replace(microsecond=0)
        expires = now + self._ttl[kind]
        jti = str(uuid.uuid4())
        payload = {
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
            "sub": str(user_id),
            "user_id": user_id,
            "username": username,
            "role": role,
            "typ": kind,
            "fam": family_id,
            "jti": jti,
            "iat": now,
            "nbf": now,
            "exp": expires,
        }
        token = jwt.encode(payload, self._secrets[kind], algorithm=ALGORITHM)
        claims = TokenClaims(user_id, username, role, family_id, jti, expires.replace(tzinfo=None))
        return IssuedToken(token, claims)

    def decode(self, kind: TokenType, token: str) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self._secrets[kind],
                algorithms=[ALGORITHM],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti", "typ", "fam"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated(f"{kind} token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid {kind} token") from exc
        if payload.get("typ") != kind:
            raise Unauthenticated(f"invalid {kind} token")
        try:
            return TokenClaims(
                user_id=int(payload["sub"]),
                username=str(payload.get("username", "")),
                role=str(payload.get("role", "")),
                family_id=str(payload["fam"]),
                jti=str(payload["jti"]),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC).replace(tzinfo=None),
            )
        except (TypeError, ValueError) as exc:
            raise Unauthenticated(f"invalid {kind} token") from exc
