"""A running execution's output on its way to the Manager: the daemon reads it from its
Agent's local API (a long poll) and queues it as `TaskOutputReport` parts, at most one per
execution every BATCH_S, however many lines the task prints. The Agent masks and caps it
before it is handed out. A part lost on the way changes nothing in the end: the final result
carries the whole output, and the Manager keeps from it whatever the parts did not bring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import httpx
from pydantic import ValidationError

from opscaffold.daemon.agent.output import OutputPart
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb

log = logging.getLogger(__name__)
BATCH_S = 0.5  # seconds between two reads of one execution's output: batches, not lines
WAIT_S = 25.0  # seconds one read waits for output
RETRY_S = 1.0
OutputReport = Callable[[pb.TaskOutputReport], None]


async def pass_output(
    http: httpx.AsyncClient,
    base_url: str,
    headers: dict[str, str],
    execution_id: str,
    report: OutputReport,
    batch_s: float = BATCH_S,
) -> None:
    """Read the execution's output from the Agent and report it, part by part, until the
    Agent says the output is complete (or knows nothing of it: its result carries it)."""
    url = f"{base_url}/tasks/{execution_id}/output"
    offset = 0
    while True:
        try:
            response = await http.get(
                url, params={"offset": offset, "wait": WAIT_S}, headers=headers
            )
            part = OutputPart.model_validate(response.json()) if response.is_success else None
        except httpx.HTTPError as exc:  # the agent restarting: it answers again soon
            log.debug("task %s output: agent not answering (%s)", execution_id, exc)
            await asyncio.sleep(RETRY_S)
            continue
        except (ValueError, ValidationError):
            part = None
        if part is None:  # an Agent without live output, or one that lost the execution
            return
        if part.data:
            report(
                pb.TaskOutputReport(execution_id=execution_id, offset=part.offset, data=part.data)
            )
        offset = part.next
        if part.more:
            continue
        if not part.running:
            return
        await asyncio.sleep(batch_s)


async def stop(follower: asyncio.Task[None] | None) -> None:
    """The result is final: what the follower has not passed on, the result carries."""
    if follower is None:
        return
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await follower
