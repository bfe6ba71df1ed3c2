"""The life of one alert condition (a rule on one node), in one table.

inactive  → pending    the condition holds, not yet for the rule's duration
inactive  → firing     the condition holds and the rule's duration is 0
pending   → firing     it has held for the rule's duration: an `alerts` row is written
pending   → inactive   it stopped holding before that: nothing was recorded
firing    → resolved   it stopped holding for keep_firing_for, or its rule was disabled or
                       deleted, or its node left the rule's target
firing    → firing     a firing condition that holds again within keep_firing_for stays firing

`inactive` is the absence of a condition row; `resolved` is final: a condition that holds again
later is a new one, with an alert of its own. Acknowledging and silencing do not change the
state: they are marks on the alert.
"""

from __future__ import annotations

from typing import Final, Literal

AlertState = Literal["inactive", "pending", "firing", "resolved"]
STATES: Final[tuple[AlertState, ...]] = ("inactive", "pending", "firing", "resolved")

TRANSITIONS: Final[dict[AlertState, frozenset[AlertState]]] = {
    "inactive": frozenset({"pending", "firing"}),
    "pending": frozenset({"firing", "inactive"}),
    "firing": frozenset({"firing", "resolved"}),
    "resolved": frozenset(),
}


def allowed(current: AlertState, target: AlertState) -> bool:
    return target in TRANSITIONS[current]


def check(current: AlertState, target: AlertState) -> None:
    """Refuse a move the table does not list: the evaluator's guard on every transition."""
    if not allowed(current, target):
        raise ValueError(f"alert condition cannot move from {current} to {target}")
