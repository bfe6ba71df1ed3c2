"""Rollouts of daemon and agent versions: the per-node records and what daemons report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from opscaffold.manager.errors import (
    DomainError,
    InvalidArgument,
    RolloutNotFound,
    RolloutTransitionRefused,
    UpdateRecordNotFound,
    UpdateTransitionRefused,
)
from opscaffold.manager.kit.pagination import PageParams
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


class RecordsRaced(Exception):
    """A record changed between the locking read and the write, which the lock rules out on
    a server database: the batch is rolled back and its reports applied again."""


@dataclass(frozen=True, slots=True)
class NodeReport:
    """A report and the node that sent it (as its credential says)."""

    node_id: int
    report: UpdateProgress


ReportOutcome = bool | DomainError  # changed the record or not; or why it was refused


async def record_progress(
    session: AsyncSession, reports: Sequence[NodeReport], now: datetime
) -> list[ReportOutcome]:
    """Apply nodes' reports to their records, in arrival order, as if one after another.

    A report of the state a record is already in changes nothing and is accepted (the daemon
    resends what was not acknowledged); a move the state table forbids, or a record that is
    not the node's, is refused for that report alone. True where the record changed.

    A fixed number of statements whatever the number of reports: the records are read and
    locked in one query, decided here, and written with one UPDATE per distinct change
    (a wave's reports are mostly the same few steps)."""
    locked = await repository.lock_states(session, {r.report.record_id for r in reports})
    state = {record_id: current for record_id, (_, current) in locked.items()}
    moves: dict[int, tuple[UpdateState, dict[str, Any]]] = {}  # record → target, values
    outcomes: list[ReportOutcome] = []
    for item in reports:
        report = item.report
        owner = locked.get(report.record_id)
        if owner is None or owner[0] != item.node_id:
            outcomes.append(
                UpdateRecordNotFound(f"this node has no update record {report.record_id}")
            )
            continue
        current = state[report.record_id]
        if current == report.state and current != "downloading":
            outcomes.append(False)  # resent after a lost acknowledgement
            continue
        if not allowed(current, report.state):
            outcomes.append(
                UpdateTransitionRefused(f"an update {current} cannot become {report.state}")
            )
            continue
        earlier = moves.get(report.record_id, (report.state, {}))[1]
        moves[report.record_id] = (report.state, {**earlier, **_values(current, report, now)})
        state[report.record_id] = report.state
        outcomes.append(True)
    await _write_moves(session, locked, moves)
    return outcomes


async def _write_moves(
    session: AsyncSession,
    locked: dict[int, tuple[int, UpdateState]],
    moves: dict[int, tuple[UpdateState, dict[str, Any]]],
) -> None:
    """One UPDATE per (state before, state after, values), guarded by the state before."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for record_id, (target, values) in moves.items():
        key = (locked[record_id][1], target, tuple(sorted(values.items())))
        groups.setdefault(key, []).append(record_id)
    for (current, target, values), record_ids in groups.items():
        moved = await repository.move_many(session, record_ids, current, target, dict(values))
        if moved != len(record_ids):  # changed under our lock: a bug, or a lockless database
            raise RecordsRaced(f"{len(record_ids) - moved} update record(s) changed meanwhile")


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


async def status_of(
    session: AsyncSession,
    batch_id: str,
    state: UpdateState | None = None,
    page: PageParams | None = None,
) -> DeployStatus:
    """A rollout's counts (one grouped query) and its records: all of them, as the spec
    has it, or those of one state and one page, which is what a console of a 50,000-node
    rollout asks for every few seconds."""
    rollout = await get_rollout(session, batch_id)
    counts = (await repository.state_counts(session, [batch_id])).get(batch_id, {})
    rows = await repository.records_with_names(
        session,
        batch_id,
        state,
        page.offset if page else 0,
        page.page_size if page else None,
    )
    records = [
        UpdateRecordRead.model_validate(
            {**{c: getattr(r, c) for c in RECORD_FIELDS}, "node_name": name}
        )
        for r, name in rows
    ]
    total = sum(counts.values())
    success = counts.get("success", 0)
    failed = counts.get("failed", 0) + counts.get("rollback", 0)
    return DeployStatus(
        batch_id=rollout.batch_id,
        status=rollout.status,
        reason=rollout.reason,
        current_wave=rollout.current_wave,
        total_waves=rollout.total_waves,
        total=total,
        success=success,
        failed=failed,
        pending=total - success - failed,
        records_total=counts.get(state, 0) if state else total,
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
