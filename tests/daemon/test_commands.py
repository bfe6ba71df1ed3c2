from __future__ import annotations

import json

import pytest

from opscaffold.daemon.commands import CommandError, Deduplicator, Intervals, parse_config


def config(values: object) -> bytes:
    return json.dumps({"config": values}).encode()


def test_dedup_knows_a_redelivery() -> None:
    dedup = Deduplicator()
    assert dedup.first_time("a")
    assert not dedup.first_time("a")
    assert dedup.first_time("b")


def test_dedup_forgets_the_oldest_beyond_capacity() -> None:
    dedup = Deduplicator(capacity=3)
    for command_id in "abc":
        dedup.first_time(command_id)
    assert not dedup.first_time("a")  # refreshes a: b is now the oldest
    dedup.first_time("d")
    assert dedup.first_time("b")
    assert not dedup.first_time("a")


def test_config_sets_both_intervals() -> None:
    change = parse_config(config({"heartbeat_interval": "15", "metric_interval": "45"}))
    assert change.apply(Intervals(30, 60)) == Intervals(15, 45)
    assert change.other == {}


def test_config_accepts_numbers_and_seconds_suffix_and_keeps_the_rest() -> None:
    change = parse_config(config({"heartbeat_interval": 10, "log_level": "debug"}))
    assert change.apply(Intervals(30, 60)) == Intervals(10, 60)
    assert change.other == {"log_level": "debug"}
    assert parse_config(config({"metric_interval": "90s"})).metric_interval == 90


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", '"config"'),
        (json.dumps({"heartbeat_interval": "5"}).encode(), '"config"'),
        (config({"heartbeat_interval": "soon"}), "not a number"),
        (config({"heartbeat_interval": "0"}), "outside"),
        (config({"metric_interval": "nan"}), "outside"),
        (config({"metric_interval": "1e9"}), "outside"),
    ],
)
def test_config_refuses_what_it_cannot_apply(payload: bytes, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_config(payload)
