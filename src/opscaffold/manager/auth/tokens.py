"""JWT access and refresh tokens: separate secrets, one pinned algorithm, every claim checked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import jwt

from opscaffold.manager.config import JwtSettings
from opscaffold.manager.errors import Unauthenticated
from opscaffold.manager.kit.storable import BIGINT_MAX, LATEST, text_problem

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
            claims = TokenClaims(
                user_id=_user_id(payload["sub"]),
                username=str(payload.get("username", "")),
                role=str(payload.get("role", "")),
                family_id=str(payload["fam"]),
                jti=str(payload["jti"]),
                expires_at=_expiry(payload["exp"]),
            )
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            raise Unauthenticated(f"invalid {kind} token") from exc
        # The claims reach the database (sessions are looked up by them): only storable text.
        if text_problem(claims.family_id) or text_problem(claims.jti):
            raise Unauthenticated(f"invalid {kind} token")
        return claims


def _user_id(sub: object) -> int:
    """A user id is a row id; anything else (even signed by us) is no user."""
    if not isinstance(sub, str) or not sub.isascii() or not sub.isdigit():
        raise ValueError("sub is not a user id")
    user_id = int(sub)
    if not 1 <= user_id <= BIGINT_MAX:
        raise ValueError("sub is not a user id")
    return user_id


def _expiry(exp: object) -> datetime:
    """`exp` as a naive UTC time a column holds; PyJWT has checked it is a number not past."""
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise TypeError("exp is not a number")
    expires = datetime.fromtimestamp(int(exp), UTC).replace(tzinfo=None)
    if expires > LATEST:
        raise ValueError("exp is beyond what can be stored")
    return expires
