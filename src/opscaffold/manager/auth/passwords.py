"""argon2id hashing off the event loop, and the password policy."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from opscaffold.manager.config import PasswordSettings
from opscaffold.manager.errors import PasswordPolicyViolation

# Passwords nobody should be allowed to pick, whatever their length.
COMMON_PASSWORDS = frozenset(
    {"password", "password1", "password123", "admin", "admin123", "administrator",
     "changeme", "changeme123", "letmein", "qwerty", "qwerty123", "welcome", "welcome1",
     "123456", "12345678", "123456789", "1234567890", "iloveyou", "opsscaffold"}
)  # fmt: skip
MAX_PASSWORD_LENGTH = 256


class PasswordHasher:
    """argon2id with the library's default cost unless config lowers it (tests only).

    Hashing takes tens of milliseconds of CPU; argon2-cffi releases the GIL, so a small thread
    pool keeps logins from stalling the requests and heartbeats that share the event loop.
    """

    def __init__(self, settings: PasswordSettings) -> None:
        defaults = Argon2Hasher()
        self._hasher = Argon2Hasher(
            time_cost=settings.argon2_time_cost or defaults.time_cost,
            memory_cost=settings.argon2_memory_cost or defaults.memory_cost,
            parallelism=settings.argon2_parallelism or defaults.parallelism,
            type=Type.ID,
        )
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")
        # Verified against when the user does not exist, so both paths cost the same.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        target = password_hash or self._dummy_hash
        ok = await loop.run_in_executor(self._pool, self._verify_sync, target, password)
        return ok and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def check_policy(password: str, settings: PasswordSettings, *, username: str = "") -> None:
    """Length, not a well-known password, not the username, more than one kind of character."""
    problems: list[str] = []
    if len(password) < settings.min_length:
        problems.append(f"at least {settings.min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"at most {MAX_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or (username and username.lower() in lowered):
        problems.append("not a common password and not containing the username")
    classes = sum(
        any(test(c) for c in password)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if classes < 2:
        problems.append("at least two of: lower case, upper case, digits, symbols")
    if problems:
        raise PasswordPolicyViolation("password must have " + "; ".join(problems))


def generate_password() -> str:
    """A random password that satisfies the policy (for the first admin)."""
    return secrets.token_urlsafe(18) + "-7a"
