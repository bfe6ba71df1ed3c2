"""The execution state table: every move it allows, and every one it forbids."""

from __future__ import annotations

import itertools

import pytest

from opscaffold.manager.task.states import FINAL, STATES, allowed, sources

ALLOWED = {
    ("pending", "running"),
    ("pending", "failed"),
    ("pending", "timeout"),
    ("pending", "cancelled"),
    ("running", "success"),
    ("running", "failed"),
    ("running", "timeout"),
    ("running", "cancelled"),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATES, STATES)))
def test_every_move_is_allowed_or_forbidden_as_listed(current: str, target: str) -> None:
    assert allowed(current, target) == ((current, target) in ALLOWED)  # type: ignore[arg-type]


@pytest.mark.timeout(10)
def test_final_states_go_nowhere_and_guards_match_the_table() -> None:
    assert {"success", "failed", "timeout", "cancelled"} == FINAL
    for state in FINAL:
        assert not any(allowed(state, target) for target in STATES)
    assert sources("cancelled") == ("pending", "running")
    assert sources("running") == ("pending",)
    assert sources("success") == ("running",)
