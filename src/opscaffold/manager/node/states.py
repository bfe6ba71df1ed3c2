"""The life of a node's status, in one table.

unknown  → online    enrolled, then heard from (a heartbeat)
unknown  → offline   enrolled and never heard from within heartbeat_timeout of enrolling
online   → online    heard from again: its deadline moves on, no transition is recorded
online   → offline   its heartbeat deadline passed
offline  → online    heard from again

A node is created `unknown` and never goes back to it. Every UPDATE of `nodes.status` names
the states it may move a node from (`sources`), so a statement racing another one cannot
make a move the table forbids.
"""

from __future__ import annotations

from typing import Final, Literal

NodeStatus = Literal["unknown", "online", "offline"]
STATES: Final[tuple[NodeStatus, ...]] = ("unknown", "online", "offline")
INITIAL: Final[NodeStatus] = "unknown"

TRANSITIONS: Final[dict[NodeStatus, frozenset[NodeStatus]]] = {
    "unknown": frozenset({"online", "offline"}),
    "online": frozenset({"online", "offline"}),
    "offline": frozenset({"online"}),
}


def allowed(current: NodeStatus, target: NodeStatus) -> bool:
    return target in TRANSITIONS[current]


def sources(target: NodeStatus) -> tuple[NodeStatus, ...]:
    """The states a node may move to `target` from: the guard of every UPDATE."""
    return tuple(state for state in STATES if allowed(state, target))
