"""The simulator's own parts, and a short real run against an address where no Manager
listens (runs against the Manager belong with its end-to-end tests)."""

from __future__ import annotations

import resource
import stat
from pathlib import Path

import pytest

from opscaffold.daemon.commands import Intervals
from opscaffold.daemon.state import NodeState
from opscaffold.fleet.simulator import (
    Fleet,
    FleetConfig,
    FleetError,
    load_states,
    raise_open_files_limit,
    save_states,
)
from tests.daemon.helpers import closed_port_target


def config(**values: object) -> FleetConfig:
    return FleetConfig.model_validate({"manager": "127.0.0.1:9090", "nodes": 3, **values})


def test_state_file_keeps_nodes_and_tokens_and_grows(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    states = load_states(path, 2)
    states[0] = NodeState(uuid=states[0].uuid, node_id=4, node_token="osn_x")
    save_states(path, states)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    again = load_states(path, 3)
    assert [s.uuid for s in again[:2]] == [s.uuid for s in states]
    assert (again[0].node_id, again[0].node_token) == (4, "osn_x")
    assert len({s.uuid for s in again}) == 3


def test_intervals_given_are_pinned_and_start_is_staggered() -> None:
    pinned = config(heartbeat_interval=2, metric_interval=3).session_settings()
    assert (pinned.intervals, pinned.pin_intervals, pinned.stagger) == (Intervals(2, 3), True, True)
    free = config().session_settings()
    assert (free.intervals, free.pin_intervals) == (Intervals(30, 60), False)


def test_new_nodes_need_an_enrollment_token() -> None:
    with pytest.raises(FleetError, match="3 nodes have no token"):
        Fleet(config())


def test_open_files_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
        raised = raise_open_files_limit()
        assert raised > min(soft, 1024)
        if hard != resource.RLIM_INFINITY:
            assert raised == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_a_run_without_a_manager_reports_the_errors(tmp_path: Path) -> None:
    state_file = tmp_path / "fleet.json"
    values = {
        "manager": closed_port_target(),
        "enrollment_token": "t",
        "nodes": 20,
        "channels": 3,
        "duration": 1.5,
        "ramp": 0.2,
        "heartbeat_interval": 0.1,
        "metric_interval": 0.1,
        "churn": 30,  # half the fleet a second: some churn within the run
        "state_file": state_file,
    }
    summary = await Fleet(FleetConfig.model_validate(values)).run()
    assert summary["nodes"] == 20
    assert summary["registered_nodes"] == 0
    assert summary["reports"]["acknowledged"] == 0
    assert summary["errors"]["UNAVAILABLE"] >= 20
    assert summary["churned"] > 0
    assert summary["failed_nodes"] == 0

    # A second run reuses the same 20 nodes.
    first = [s.uuid for s in load_states(state_file, 0)]
    await Fleet(FleetConfig.model_validate({**values, "duration": 0.3})).run()
    assert [s.uuid for s in load_states(state_file, 0)] == first
    assert len(first) == 20
