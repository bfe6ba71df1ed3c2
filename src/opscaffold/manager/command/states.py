"""The life of a command in the outbox, in one table.

pending  → sent      written to a daemon that reports back (Connect, or a heartbeat response
                     to a daemon that sends results); written again until it does
pending  → done      written over a channel that cannot report back (SubscribeUpdates, a
                     heartbeat response to a daemon of the design's proto): delivery is final
sent     → done      the daemon carried it out
sent     → failed    the daemon could not, and said why
pending, sent → expired   past expires_at

done, failed and expired are final: a late or repeated report changes nothing.
"""

from __future__ import annotations

from typing import Final, Literal

CommandState = Literal["pending", "sent", "done", "failed", "expired"]
STATES: Final[tuple[CommandState, ...]] = ("pending", "sent", "done", "failed", "expired")

TRANSITIONS: Final[dict[CommandState, frozenset[CommandState]]] = {
    "pending": frozenset({"sent", "done", "expired"}),
    "sent": frozenset({"sent", "done", "failed", "expired"}),  # sent → sent: redelivered
    "done": frozenset(),
    "failed": frozenset(),
    "expired": frozenset(),
}


def allowed(current: CommandState, target: CommandState) -> bool:
    return target in TRANSITIONS[current]


def sources(target: CommandState) -> tuple[CommandState, ...]:
    """The states a command may move to `target` from: the guard of every UPDATE."""
    return tuple(state for state in STATES if allowed(state, target))
