"""Orders as a daemon (real or simulated) receives and answers them: the order an `update`
command carries, the states it reports to the Manager's update record, and the command's
result; and the report of a task execution's result."""

from __future__ import annotations

from pydantic import ValidationError

from opscaffold.daemon.commands import CommandError
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.task import TaskResult
from opscaffold.protocol.text import wire_text
from opscaffold.protocol.update import UpdateOrder, UpdateState


def parse_order(payload: bytes) -> UpdateOrder:
    """The order an `update` command carries; CommandError naming each field that is wrong."""
    try:
        return UpdateOrder.model_validate_json(payload or b"{}")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()
        )
        raise CommandError(f"the update order is not valid: {problems}") from exc


def command_error(state: UpdateState) -> str | None:
    """An update command's result: done on success, else failed with the state and reason."""
    return None if state.status == "success" else f"{state.status}: {state.message}"


def status_report(state: UpdateState, version: str) -> pb.UpdateStatusReport:
    """A state for the Manager's update record; `version` is the one ordered."""
    success = state.status == "success"
    return pb.UpdateStatusReport(
        record_id=state.record_id,
        status=state.status,
        progress=state.progress,
        error="" if success else wire_text(state.message),
        version=version if success else "",
    )


def task_report(result: TaskResult) -> pb.TaskResultReport:
    """A task execution's result for the Manager (ReportTaskResult, or on Connect)."""
    report = pb.TaskResultReport(
        execution_id=result.execution_id,
        status=result.status,
        output=wire_text(result.output),
        truncated=result.truncated,
        error=wire_text(result.error),
        started_at=result.started_at,
        finished_at=result.finished_at,
    )
    if result.exit_code is not None:
        report.exit_code = result.exit_code
    return report
