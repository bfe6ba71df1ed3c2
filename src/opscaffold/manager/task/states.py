"""The life of one node's execution of a task (a `task_executions` row), in one table.

pending  → running     the node's Agent accepted the signed envelope and started it
pending  → cancelled   cancelled before it started (its undelivered envelope expires)
pending  → failed      the node refused the envelope, or could not start it
pending  → timeout     no word from the node by the deadline plus the grace
running  → success     exit code 0 (script), or the action was done (file, service, custom)
running  → failed      a non-zero exit code, or the action failed, with the reason
running  → timeout     the Agent killed it at its timeout, or no result by deadline + grace
running  → cancelled   the Agent killed it on a cancel

A node reports `running` before its final state, one report at a time, in order.

success, failed, timeout and cancelled are final. A report of the state an execution is already
in (a resend after a lost acknowledgement) is accepted and changes nothing; any move the table
does not list is refused.
"""

from __future__ import annotations

from typing import Final, Literal

ExecutionState = Literal["pending", "running", "success", "failed", "timeout", "cancelled"]
STATES: Final[tuple[ExecutionState, ...]] = (
    "pending",
    "running",
    "success",
    "failed",
    "timeout",
    "cancelled",
)
FINAL: Final[frozenset[ExecutionState]] = frozenset({"success", "failed", "timeout", "cancelled"})
ACTIVE: Final[tuple[ExecutionState, ...]] = ("pending", "running")

TRANSITIONS: Final[dict[ExecutionState, frozenset[ExecutionState]]] = {
    "pending": frozenset({"running", "failed", "timeout", "cancelled"}),
    "running": frozenset({"success", "failed", "timeout", "cancelled"}),
    "success": frozenset(),
    "failed": frozenset(),
    "timeout": frozenset(),
    "cancelled": frozenset(),
}


def allowed(current: ExecutionState, target: ExecutionState) -> bool:
    return target in TRANSITIONS[current]


def sources(target: ExecutionState) -> tuple[ExecutionState, ...]:
    """The states an execution may move to `target` from: the guard of every UPDATE."""
    return tuple(state for state in STATES if allowed(state, target))
