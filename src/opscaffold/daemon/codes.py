"""What a daemon does with each gRPC status it gets back, on any transport."""

from __future__ import annotations

from enum import Enum


class Disposition(Enum):
    KEEP = "keep"  # the Manager could not take it now: resend later, oldest first
    DROP = "drop"  # the Manager will never take it (e.g. a value out of range): forget it
    FATAL = "fatal"  # our credential is refused: stop, never re-enroll on our own


# Retried: the Manager is busy or was unreachable, the report itself is fine. A deadline may
# have passed after the Manager committed; the resend is then stored once (it deduplicates).
KEEP_CODES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED"})
FATAL_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})


def disposition(code: str) -> Disposition:
    """`code` is a gRPC status name, as StreamAck refusals carry it."""
    if code in KEEP_CODES:
        return Disposition.KEEP
    if code in FATAL_CODES:
        return Disposition.FATAL
    # INVALID_ARGUMENT and anything unexpected: the contract says a refusal is final unless
    # its code says to retry, and resending a report the Manager rejects would block the queue.
    return Disposition.DROP
