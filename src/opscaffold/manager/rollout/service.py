"""Rollouts of daemon and agent versions: the per-node records and what daemons report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.errors import (
    InvalidArgument,
    RolloutNotFound,
    RolloutTransitionRefused,
    UpdateRecordNotFound,
    UpdateTransitionRefused,
)
from opscaffold.manager.models import Rollout
from opscaffold.manager.models.release import ACTIVE_ROLLOUT_STATUSES
from opscaffold.manager.rollout import repository
from opscaffold.manager.rollout.schemas import (
    DeployStatus,
    RolloutRead,
    StateCounts,
    UpdateRecordRead,
)
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
    values: dict[str, Any] = {
        "progress": 100 if report.state == "success" else report.progress,
        "reported_at": now,
    }
    if current == "pending":
        values["started_at"] = now
    if report.state in FINAL:
        values["finished_at"] = now
    if report.error is not None:
        values["error_message"] = report.error
    return values


# -- rollouts -----------------------------------------------------------------------------


async def list_rollouts(
    session: AsyncSession, offset: int, limit: int, status: str | None
) -> tuple[int, list[RolloutRead]]:
    """Rollouts, newest first, each with its records counted per state (one grouped query)."""
    total, rows = await repository.page_rollouts(session, offset, limit, status)
    counts = await repository.state_counts(session, [r.batch_id for r in rows])
    items = [
        RolloutRead.model_validate(row).model_copy(
            update={"counts": StateCounts(**counts.get(row.batch_id, {}))}
        )
        for row in rows
    ]
    return total, items


async def get_rollout(session: AsyncSession, batch_id: str, *, locked: bool = False) -> Rollout:
    rollout = await repository.get_rollout(session, batch_id, locked=locked)
    if rollout is None:
        raise RolloutNotFound(f"no rollout {batch_id}")
    return rollout


async def status_of(session: AsyncSession, batch_id: str) -> DeployStatus:
    rollout = await get_rollout(session, batch_id)
    records = [
        UpdateRecordRead.model_validate(
            {**{c: getattr(r, c) for c in RECORD_FIELDS}, "node_name": name}
        )
        for r, name in await repository.records_with_names(session, batch_id)
    ]
    success = sum(r.status == "success" for r in records)
    failed = sum(r.status in ("failed", "rollback") for r in records)
    return DeployStatus(
        batch_id=rollout.batch_id,
        status=rollout.status,
        reason=rollout.reason,
        current_wave=rollout.current_wave,
        total_waves=rollout.total_waves,
        total=len(records),
        success=success,
        failed=failed,
        pending=len(records) - success - failed,
        records=records,
    )


RECORD_FIELDS = tuple(f for f in UpdateRecordRead.model_fields if f != "node_name")


async def pause(session: AsyncSession, batch_id: str, now: datetime) -> Rollout:
    """Stop starting new waves; orders already sent are carried out."""
    return await _move(session, batch_id, ("running",), {"status": "paused"}, now, "paused")


async def resume(session: AsyncSession, batch_id: str, now: datetime) -> Rollout:
    """Go on: the failures so far are accepted, and a canary that paused it is trusted."""
    rollout = await get_rollout(session, batch_id, locked=True)
    failed = await repository.failures(session, batch_id)
    values = {
        "status": "running",
        "reason": None,
        "accepted_failures": max(rollout.accepted_failures, failed - rollout.max_failures),
        "resumed_wave": rollout.current_wave,
    }
    return await _move(session, batch_id, ("paused",), values, now, "resumed")


async def cancel(session: AsyncSession, batch_id: str, now: datetime) -> Rollout:
    """Stop for good: orders not yet written to a daemon are withdrawn and their records fail
    as cancelled. An order already written may have been received: it is carried out and
    reported, or its record fails when the order expires unanswered."""
    rollout = await _move(
        session,
        batch_id,
        ACTIVE_ROLLOUT_STATUSES,
        {"status": "cancelled", "reason": "cancelled", "finished_at": now},
        now,
        "cancelled",
    )
    await repository.expire_undelivered(session, batch_id)
    await repository.fail_pending(
        session, Rollout.batch_id == batch_id, "cancelled", now, unsent_only=True
    )
    return rollout


async def _move(
    session: AsyncSession,
    batch_id: str,
    sources: tuple[str, ...],
    values: dict[str, Any],
    now: datetime,
    verb: str,
) -> Rollout:
    if not await repository.move_rollout(session, batch_id, sources, {**values, "updated_at": now}):
        rollout = await get_rollout(session, batch_id)
        raise RolloutTransitionRefused(f"a {rollout.status} rollout cannot be {verb}")
    return await get_rollout(session, batch_id)
