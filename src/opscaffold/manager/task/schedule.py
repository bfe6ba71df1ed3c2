"""Cron arithmetic for scheduled tasks: when a task fires next, and what a due task does now.

Expressions have the five fields of spec §3.2.8 (minute hour day-of-month month day-of-week)
and are read in one configured zone (`task.cron_timezone`, UTC by default), so "0 3 * * *"
is 03:00 there, daylight saving included. Times in and out are naive UTC, as stored.

Pure functions only: the scheduler's SQL and the executions it starts live in the repository
and the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Final
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

FIELDS: Final = 5
MAX_PREVIEW: Final = 20  # next times one preview may ask for


class CronInvalid(ValueError):
    """The expression cannot schedule anything; the message says why, for a person."""


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def normalize(value: str) -> str:
    """The expression as stored: single spaces, five valid fields, at least one future time."""
    value = " ".join(value.split())
    if len(value.split(" ")) != FIELDS:
        raise CronInvalid("must have 5 fields: minute hour day-of-month month day-of-week")
    if not croniter.is_valid(value):
        raise CronInvalid(f"{value!r} is not a valid cron expression")
    if next_after(value, datetime(2000, 1, 1), zone("UTC")) is None:
        raise CronInvalid(f"{value!r} names no date that exists (e.g. 31 February)")
    return value


def next_runs(expr: str, after: datetime, tz: ZoneInfo, count: int) -> list[datetime]:
    """Up to `count` times strictly after `after` (fewer when the schedule runs out)."""
    runs: list[datetime] = []
    at = after
    while len(runs) < count and (at_next := next_after(expr, at, tz)) is not None:
        runs.append(at_next)
        at = at_next
    return runs


def next_after(expr: str, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first time strictly after `after`; None when there is none (croniter searches a
    bounded span of years)."""
    try:
        found: datetime = croniter(expr, _local(after, tz)).get_next(datetime)
    except CroniterBadDateError:
        return None
    return _utc(found)


def latest_at_or_before(expr: str, at: datetime, tz: ZoneInfo) -> datetime | None:
    """The last time not after `at` (`at` itself when it is one)."""
    try:
        found: datetime = croniter(expr, _local(at + timedelta(seconds=1), tz)).get_prev(datetime)
    except CroniterBadDateError:
        return None
    return _utc(found)


def first_run(cron_expr: str | None, enabled: bool, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When a task defined or changed at `now` fires first: none without a schedule or while
    disabled (a disabled task keeps no due time, so the scheduler's query never sees it)."""
    if not cron_expr or not enabled:
        return None
    return next_after(cron_expr, now, tz)


@dataclass(frozen=True, slots=True)
class Decision:
    fire_for: datetime | None  # the scheduled time this fire stands for; None: no fire now
    next_run_at: datetime | None  # the task's next due time afterwards
    missed: bool  # the latest scheduled time passed more than the grace ago


def decide(
    cron_expr: str,
    misfire: str,
    due: datetime,
    now: datetime,
    tz: ZoneInfo,
    grace: timedelta,
) -> Decision:
    """What a task due at `due` (≤ now) does at `now`.

    It fires for the latest scheduled time up to now, once, whatever number of times were
    passed over (never a burst): on time when that is within `grace`; later only when its
    `misfire` is `run_once`, otherwise it waits for its next time. Either way the next due
    time is the first one after now. A due time that is no scheduled time (a clock stepped
    back, a schedule set at migration) does not fire.
    """
    latest = latest_at_or_before(cron_expr, now, tz)
    following = next_after(cron_expr, now, tz)
    if latest is None or latest < due:
        return Decision(None, following, missed=False)
    missed = now - latest > grace
    fire = not missed or misfire == "run_once"
    return Decision(latest if fire else None, following, missed)


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    return at.replace(tzinfo=UTC).astimezone(tz)


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)
