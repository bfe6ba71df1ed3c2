"""Time at the edges: naive UTC inside, RFC 3339 with a Z outside."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC, second precision: what a DATETIME column stores on every database."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def as_utc(value: datetime) -> datetime:
    """Interpret a naive database value as UTC; convert an aware one to naive UTC."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return as_utc(value).isoformat(timespec="seconds") + "Z"
