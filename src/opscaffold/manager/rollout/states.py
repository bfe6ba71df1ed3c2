"""The life of one node's update (an `update_records` row), in one table.

pending      → downloading   the daemon has the order and fetches the package
pending      → failed        never started: the node stayed offline past the rollout's expiry,
                             the rollout was cancelled, or the daemon refused the order
downloading  → downloading   progress (0..100)
downloading  → installing    the package is here, its hash and signature hold
installing   → verifying     switched to the new version; its health is being checked
verifying    → success       healthy on the new version
downloading, installing, verifying → failed     with the reason
installing, verifying              → rollback   the daemon went back to the version it ran
                                                before, by itself, and said why

success, failed and rollback are final. A report of the state a record is already in (a
resend after a lost acknowledgement) is accepted and changes nothing; any move the table does
not list is refused.
"""

from __future__ import annotations

from typing import Final, Literal

UpdateState = Literal[
    "pending", "downloading", "installing", "verifying", "success", "failed", "rollback"
]
STATES: Final[tuple[UpdateState, ...]] = (
    "pending",
    "downloading",
    "installing",
    "verifying",
    "success",
    "failed",
    "rollback",
)
FINAL: Final[frozenset[UpdateState]] = frozenset({"success", "failed", "rollback"})

TRANSITIONS: Final[dict[UpdateState, frozenset[UpdateState]]] = {
    "pending": frozenset({"downloading", "failed"}),
    "downloading": frozenset({"downloading", "installing", "failed"}),
    "installing": frozenset({"verifying", "failed", "rollback"}),
    "verifying": frozenset({"success", "failed", "rollback"}),
    "success": frozenset(),
    "failed": frozenset(),
    "rollback": frozenset(),
}


def allowed(current: UpdateState, target: UpdateState) -> bool:
    return target in TRANSITIONS[current]


def sources(target: UpdateState) -> tuple[UpdateState, ...]:
    """The states a record may move to `target` from: the guard of every UPDATE."""
    return tuple(state for state in STATES if allowed(state, target))
