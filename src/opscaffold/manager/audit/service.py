"""Audit trail of every mutating request and every login attempt.

A successful change writes its row in the same transaction as the change. A failure writes its
row in a transaction of its own, folded: one row per source, action and minute with a count,
so a flood of bad requests cannot flood the table. A folded login failure keeps how often each
username was tried (the first MAX_FOLDED_NAMES names; attempts on more are counted).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.audit import repository
from opscaffold.manager.kit.clock import utcnow

SECRET_MARKERS = ("password", "token", "secret", "authorization")
MAX_USER_AGENT = 255
MAX_ERROR = 1000
# A folded row counts the attempts per distinct username (a password spray tries many), up to
# this many names; attempts on further names are only counted, so the row stays small.
MAX_FOLDED_NAMES = 20


@dataclass(slots=True)
class AuditTrail:
    """What a request did, filled in as it runs and written when it ends."""

    action: str
    resource_type: str
    ip: str
    user_agent: str | None = None
    resource_id: str | None = None
    user_id: int | None = None
    username: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # Set when a request refuses something yet commits (e.g. a replayed refresh token).
    error: str | None = None
    written: bool = False


def scrub(detail: dict[str, Any]) -> dict[str, Any]:
    """Drop anything that looks like a credential, however a caller named it."""
    clean: dict[str, Any] = {}
    for key, value in detail.items():
        if any(marker in key.lower() for marker in SECRET_MARKERS):
            continue
        clean[key] = scrub(value) if isinstance(value, dict) else value
    return clean


def _row(trail: AuditTrail, status: str, error: str | None) -> dict[str, Any]:
    return {
        "user_id": trail.user_id,
        "username": trail.username,
        "action": trail.action,
        "resource_type": trail.resource_type,
        "resource_id": trail.resource_id,
        "detail": scrub(trail.detail) or None,
        "ip": trail.ip[:45],
        "user_agent": (trail.user_agent or "")[:MAX_USER_AGENT] or None,
        "status": status,
        "error_message": error[:MAX_ERROR] if error else None,
        "created_at": utcnow(),
    }


async def record(session: AsyncSession, trail: AuditTrail) -> None:
    """Write the row in the caller's transaction, so it commits or rolls back with the change."""
    if trail.written:
        return
    trail.written = True
    status = "failed" if trail.error else "success"
    await repository.insert(session, _row(trail, status, trail.error))


async def record_failure(session: AsyncSession, trail: AuditTrail, code: int, message: str) -> None:
    """Fold by source, action, error code, caller and minute: each part has few values a
    client can choose (a login's attempted username is not part of it), so rows stay bounded."""
    if trail.written:
        return
    trail.written = True
    row = _row(trail, "failed", f"{code}: {message}")
    minute = row["created_at"].strftime("%Y%m%d%H%M")
    source = f"{trail.ip}|{trail.action}|{code}|{trail.user_id}|{minute}"
    row["fold_key"] = hashlib.sha256(source.encode()).hexdigest()
    name = trail.detail.get("username")
    if isinstance(name, str) and row["detail"] is not None:
        row["detail"]["usernames"] = {name: 1}
    await repository.insert_folded(session, row)
    if isinstance(name, str):
        await _count_username(session, row["fold_key"], name)


async def _count_username(session: AsyncSession, fold_key: str, name: str) -> None:
    """Add an attempt on `name` to a folded row that this attempt did not create."""
    occurrences, detail = await repository.folded_for_update(session, fold_key)
    if occurrences <= 1:
        return  # our own insert, which already counts the name
    detail = dict(detail or {})
    names: dict[str, int] = dict(detail.get("usernames") or {})
    if name in names or len(names) < MAX_FOLDED_NAMES:
        names[name] = names.get(name, 0) + 1
    else:
        detail["usernames_not_listed"] = int(detail.get("usernames_not_listed", 0)) + 1
    detail["usernames"] = names
    await repository.set_folded_detail(session, fold_key, detail)
