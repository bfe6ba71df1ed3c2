"""The alert condition's state table: every move allowed or forbidden as designed."""

from __future__ import annotations

import itertools

import pytest

from opscaffold.manager.alert.states import STATES, TRANSITIONS, AlertState, allowed, check
from opscaffold.manager.models.alert import Alert

DESIGNED = {
    ("inactive", "pending"),
    ("inactive", "firing"),
    ("pending", "firing"),
    ("pending", "inactive"),
    ("firing", "firing"),
    ("firing", "resolved"),
}


def test_the_table_covers_every_state_and_the_alert_rows_hold_the_recorded_ones() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert not TRANSITIONS["resolved"]  # final: a condition holding again is a new one
    status = Alert.__table__.c.status.type
    assert set(getattr(status, "enums", ())) == {"firing", "resolved"}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATES, STATES)))
def test_every_move_is_allowed_or_refused_as_designed(
    current: AlertState, target: AlertState
) -> None:
    designed = (current, target) in DESIGNED
    assert allowed(current, target) == designed
    if designed:
        check(current, target)
    else:
        with pytest.raises(ValueError, match=f"from {current} to {target}"):
            check(current, target)
