"""Cron arithmetic of scheduled tasks: next times in a zone, and what a due task does now."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import get_args

import pytest

from opscaffold.manager.config import ConfigError, load_settings
from opscaffold.manager.models.task import MISFIRE_POLICIES
from opscaffold.manager.task import schedule
from opscaffold.manager.task.schemas import Misfire

pytestmark = pytest.mark.timeout(10)
UTC = schedule.zone("UTC")
SHANGHAI = schedule.zone("Asia/Shanghai")
NEW_YORK = schedule.zone("America/New_York")
GRACE = timedelta(seconds=60)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_misfire_values_are_one_set() -> None:
    assert get_args(Misfire) == MISFIRE_POLICIES


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("* * * * * *", "5 fields"),
        ("* * * *", "5 fields"),
        ("@daily", "5 fields"),
        ("every minute of the day", "not a valid cron expression"),
        ("61 * * * *", "not a valid cron expression"),
        ("*/0 * * * *", "not a valid cron expression"),
        ("0 0 31 2 *", "no date that exists"),
    ],
)
def test_expressions_that_cannot_schedule_are_refused_saying_why(expr: str, reason: str) -> None:
    with pytest.raises(schedule.CronInvalid, match=reason):
        schedule.normalize(expr)


def test_an_expression_is_stored_with_single_spaces() -> None:
    assert schedule.normalize("  */5   *  * * 1-5 ") == "*/5 * * * 1-5"


def test_next_times_are_strictly_after_and_in_order() -> None:
    runs = schedule.next_runs("*/15 * * * *", at("2026-03-01 10:15:00"), UTC, 3)
    assert runs == [at("2026-03-01 10:30"), at("2026-03-01 10:45"), at("2026-03-01 11:00")]


def test_expressions_are_read_in_the_configured_zone_and_answered_in_utc() -> None:
    # 03:00 in Shanghai (UTC+8) is 19:00 UTC the day before
    assert schedule.next_after("0 3 * * *", at("2026-03-01 12:00"), SHANGHAI) == at(
        "2026-03-01 19:00"
    )
    # New York moves to daylight time on 8 March 2026: 09:00 there is 14:00 UTC, then 13:00
    runs = schedule.next_runs("0 9 * * *", at("2026-03-06 15:00"), NEW_YORK, 3)
    assert runs == [at("2026-03-07 14:00"), at("2026-03-08 13:00"), at("2026-03-09 13:00")]


def test_the_latest_time_includes_now_itself() -> None:
    assert schedule.latest_at_or_before("* * * * *", at("2026-03-01 12:00"), UTC) == at(
        "2026-03-01 12:00"
    )
    assert schedule.latest_at_or_before("0 * * * *", at("2026-03-01 12:59:59"), UTC) == at(
        "2026-03-01 12:00"
    )


def test_a_task_is_due_only_with_a_schedule_and_while_enabled() -> None:
    now = at("2026-03-01 12:00:30")
    assert schedule.first_run("* * * * *", True, now, UTC) == at("2026-03-01 12:01")
    assert schedule.first_run("* * * * *", False, now, UTC) is None
    assert schedule.first_run(None, True, now, UTC) is None


@pytest.mark.parametrize("misfire", ["skip", "run_once"])
def test_a_fire_on_time_runs_whatever_the_misfire_policy(misfire: str) -> None:
    due = at("2026-03-01 12:00")
    decision = schedule.decide("* * * * *", misfire, due, due + timedelta(seconds=3), UTC, GRACE)
    assert decision == schedule.Decision(due, at("2026-03-01 12:01"), missed=False)


@pytest.mark.parametrize(("misfire", "fires"), [("skip", False), ("run_once", True)])
def test_a_fire_missed_while_no_manager_ran_runs_once_or_is_skipped(
    misfire: str, fires: bool
) -> None:
    # hourly, due at 09:00, and the first Manager is back at 12:20: three fires were missed
    now = at("2026-03-01 12:20:00")
    decision = schedule.decide("0 * * * *", misfire, at("2026-03-01 09:00"), now, UTC, GRACE)
    assert decision.missed
    assert decision.fire_for == (at("2026-03-01 12:00") if fires else None)
    assert decision.next_run_at == at("2026-03-01 13:00")  # never a burst of the missed ones


def test_after_a_long_stop_a_fire_due_now_is_on_time() -> None:
    # every minute, stopped for an hour, back 5 s after a minute: that minute's fire runs
    now = at("2026-03-01 12:00:05")
    decision = schedule.decide("* * * * *", "skip", at("2026-03-01 11:00"), now, UTC, GRACE)
    assert decision == schedule.Decision(at("2026-03-01 12:00"), at("2026-03-01 12:01"), False)


def test_a_due_time_that_is_no_scheduled_time_sets_the_next_without_firing() -> None:
    # tasks scheduled by the migration are due "now", which need not be a scheduled time
    due = at("2026-03-01 12:00:30")
    decision = schedule.decide("0 * * * *", "run_once", due, due, UTC, GRACE)
    assert decision == schedule.Decision(None, at("2026-03-01 13:00"), missed=False)


def test_the_cron_time_zone_setting_must_name_a_zone() -> None:
    settings = load_settings(None, {"OPS_TASK__CRON_TIMEZONE": "Asia/Shanghai"})
    assert settings.task.cron_timezone == "Asia/Shanghai"
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(ConfigError, match=r"task\.cron_timezone"):
            load_settings(None, {"OPS_TASK__CRON_TIMEZONE": bad})


def test_passes_further_apart_than_the_misfire_grace_are_refused() -> None:
    env = {"OPS_TASK__SCHEDULE_INTERVAL": "2m", "OPS_TASK__MISFIRE_GRACE": "1m"}
    with pytest.raises(ConfigError, match=r"task\.misfire_grace: must be at least"):
        load_settings(None, env)
