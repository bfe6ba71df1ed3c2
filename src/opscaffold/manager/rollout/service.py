"""Rollouts of daemon and agent versions: the per-node records and what daemons report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.errors import (
    InvalidArgument,
    UpdateRecordNotFound,
    UpdateTransitionRefused,
)
from opscaffold.manager.rollout import repository
from opscaffold.manager.rollout.states import FINAL, UpdateState, allowed

MAX_ERROR = 4000  # characters of a daemon's reason kept
REPORTED: frozenset[str] = frozenset(get_args(UpdateState)) - {"pending"}


@dataclass(frozen=True, slots=True)
class UpdateProgress:
    """One step a daemon reports of an update it was ordered to make."""

    record_id: int
    state: UpdateState
    progress: int
    error: str | None
    version: str | None


def progress_of(
    record_id: int, status: str, progress: int, error: str, version: str
) -> UpdateProgress:
    """Validate what a daemon reports, naming the field that is wrong."""
    if record_id < 1:
        raise InvalidArgument("record_id must name an update record")
    if status not in REPORTED:
        raise InvalidArgument(f"status '{status[:32]}' is not one of {sorted(REPORTED)}")
    if not 0 <= progress <= 100:
        raise InvalidArgument(f"progress={progress} is outside 0..100")
    if len(version) > 32:
        raise InvalidArgument("version is longer than 32 characters")
    state: UpdateState = status  # type: ignore[assignment]  # checked against REPORTED
    return UpdateProgress(record_id, state, progress, error[:MAX_ERROR] or None, version or None)


async def record_progress(
    session: AsyncSession, node_id: int, report: UpdateProgress, now: datetime
) -> bool:
    """Apply a node's report to its record. A report of the state the record is already in
    changes nothing and is accepted (the daemon resends what was not acknowledged); a move
    the state table forbids is refused. True when the record changed."""
    current = await repository.lock_state(session, report.record_id, node_id)
    if current is None:
        raise UpdateRecordNotFound(f"this node has no update record {report.record_id}")
    if current == report.state and current != "downloading":
        return False  # resent after a lost acknowledgement (downloading → downloading is news)
    if not allowed(current, report.state):
        raise UpdateTransitionRefused(f"an update {current} cannot become {report.state}")
    values = _values(current, report, now)
    return await repository.move(session, report.record_id, node_id, report.state, values)


def _values(current: UpdateState, report: UpdateProgress, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"progress": 100 if report.state == "success" else report.progress}
    if current == "pending":
        values["started_at"] = now
    if report.state in FINAL:
        values["finished_at"] = now
    if report.error is not None:
        values["error_message"] = report.error
    return values
