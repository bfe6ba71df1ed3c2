"""A task execution's output while it runs: parts stored as the node sends them, each at the
byte offset where it starts (a resent part is stored once), and read back from any offset,
following new parts until the execution ends.

Offsets count bytes of the output's UTF-8 text. The parts are the live record; when the final
result arrives it holds the whole output (the node builds it from the same text), the parts
are dropped, and readers go on from `task_executions.output` at the same offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from opscaffold.manager.db import transaction
from opscaffold.manager.errors import ExecutionNotFound, InvalidArgument
from opscaffold.manager.logging import get_logger
from opscaffold.manager.task import repository
from opscaffold.manager.task.repository import OutputHead
from opscaffold.manager.task.states import FINAL

MAX_PART = 4 * 1024 * 1024  # bytes of one part a node sends
MAX_STORED = 16 * 1024 * 1024  # bytes of parts kept per execution, whatever a node sends
MAX_OFFSET = 2**40
READ_PARTS = 32  # parts read per query while following
EVENT_BYTES = 64 * 1024  # text per event handed to a reader: a big part goes in several
log = get_logger("opscaffold.task")


# -- what nodes send ------------------------------------------------------------------------
def check_part(execution_id: str, offset: int, data: str) -> None:
    """Validate a part a node sends, naming the field that is wrong."""
    try:
        uuid.UUID(execution_id)
    except ValueError as exc:
        raise InvalidArgument("execution_id must name an execution") from exc
    if not 0 <= offset < MAX_OFFSET:
        raise InvalidArgument(f"offset={offset} is not a position in the output")
    if len(data.encode()) > MAX_PART:
        raise InvalidArgument(f"data: a part may hold at most {MAX_PART} bytes")


async def append(
    session: AsyncSession, node_id: int, execution_id: str, offset: int, data: str, now: datetime
) -> bool:
    """Store the part of the node's output that starts at byte `offset`: what is new in it,
    once. A part that starts past what is stored is refused (one before it is missing); one
    that arrives after the final result changes nothing. True when something was stored."""
    row = await repository.one_execution(session, execution_id, node_id, locked=True)
    if row is None:
        raise ExecutionNotFound(f"this node has no execution {execution_id}")
    if row.status in FINAL:
        return False  # the result holds the whole output already
    stored = await repository.output_end(session, execution_id, node_id)
    raw = data.encode()
    if offset > stored:
        raise InvalidArgument(
            f"offset={offset}: the output stored so far ends at byte {stored}; "
            "send the part that starts there first"
        )
    new = raw[stored - offset :]
    if not new or stored + len(new) > MAX_STORED:
        return False
    if new[0] & 0xC0 == 0x80:  # a UTF-8 continuation byte
        raise InvalidArgument(f"offset={offset}: byte {stored} is inside a character")
    await repository.add_output(
        session, execution_id, node_id, stored, stored + len(new), new.decode(), now
    )
    return True


async def settle(session: AsyncSession, execution_id: str, node_id: int, final: str) -> str:
    """The final result arrived: the output to keep (the result's, or the parts when it
    brought none: an Agent that stopped mid-task), and the parts are dropped."""
    parts = "".join(await repository.output_parts(session, execution_id, node_id))
    if not parts:
        return final
    await repository.drop_output(session, execution_id, node_id)
    if not final:
        return parts
    if not final.startswith(parts):
        log.warning("final output does not continue the parts sent", execution_id=execution_id)
    return final


async def text_so_far(session: AsyncSession, execution_id: str, node_id: int) -> str:
    """The parts stored so far, joined (an execution that has no final output yet)."""
    return "".join(await repository.output_parts(session, execution_id, node_id))


# -- readers --------------------------------------------------------------------------------
def resume_offset(offset: int, last_event_id: str | None) -> int:
    """Where a reader starts: after the last event it received (its id is the offset that
    event ended at), else at `offset`."""
    if last_event_id is None or not last_event_id.strip():
        return offset
    value = last_event_id.strip()
    if not value.isdigit() or int(value) >= MAX_OFFSET:
        raise InvalidArgument(
            f"Last-Event-ID: {value[:32]!r} is not an event id of this stream (a byte offset)"
        )
    return int(value)


@dataclass(frozen=True, slots=True)
class OutputEvent:
    start: int  # bytes
    end: int
    data: str


@dataclass(frozen=True, slots=True)
class EndEvent:
    status: str
    exit_code: int | None
    truncated: bool


Event = OutputEvent | EndEvent | None  # None: nothing new for a while (time for a keep-alive)


async def head_of(session: AsyncSession, execution_id: str, node_id: int) -> OutputHead:
    head = await repository.output_head(session, execution_id, node_id)
    if head is None:
        raise ExecutionNotFound(f"execution {execution_id} has no node {node_id}")
    return head


@dataclass(frozen=True, slots=True)
class _Read:
    head: OutputHead
    parts: list[tuple[int, bytes]]  # (start, data) of stored parts past the offset
    final: bytes | None  # the final output, once no part is left past the offset


async def follow(
    sessions: async_sessionmaker[AsyncSession],
    execution_id: str,
    node_id: int,
    offset: int,
    wake: asyncio.Event,
    poll_s: float,
) -> AsyncGenerator[Event]:
    """The output from byte `offset`: what is stored, then each new part as it comes (on
    `wake`, or every `poll_s` whatever the wake-ups say), then the end once the execution
    is final. The state is read before the parts: a final state read means every part
    (or the final output) is there to read too."""
    while True:
        wake.clear()  # before reading: a part stored from now on wakes the wait below
        read = await _read(sessions, execution_id, node_id, offset)
        for start, data in read.parts:
            for event in _slices(data, start, offset):
                yield event
                offset = event.end
        if read.parts:
            continue
        if read.head.status in FINAL:
            for event in _slices(read.final or b"", 0, offset):
                yield event
            head = read.head
            yield EndEvent(head.status, head.exit_code, head.truncated)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_s):
                await wake.wait()
        if not wake.is_set():
            yield None


async def _read(
    sessions: async_sessionmaker[AsyncSession], execution_id: str, node_id: int, offset: int
) -> _Read:
    async with transaction(sessions) as session:
        head = await head_of(session, execution_id, node_id)
        rows = await repository.output_after(session, execution_id, node_id, offset, READ_PARTS)
        parts = [(row.start_offset, row.data.encode()) for row in rows]
        final = None
        if not parts and head.status in FINAL and head.has_output:
            final = (
                (await repository.stored_output(session, execution_id, node_id)) or ""
            ).encode()
    return _Read(head, parts, final)


def _slices(data: bytes, start: int, offset: int) -> Iterator[OutputEvent]:
    """Events for the bytes of `data` (which starts at byte `start` of the output) from byte
    `offset` on, each at most EVENT_BYTES, never splitting a character."""
    position = _boundary(data, max(offset - start, 0), forward=True)
    while position < len(data):
        end = _boundary(data, min(position + EVENT_BYTES, len(data)), forward=False)
        if end <= position:  # cannot happen with UTF-8 (a character is at most 4 bytes)
            end = len(data)
        yield OutputEvent(start + position, start + end, data[position:end].decode())
        position = end


def _boundary(data: bytes, at: int, *, forward: bool) -> int:
    step = 1 if forward else -1
    while 0 < at < len(data) and data[at] & 0xC0 == 0x80:
        at += step
    return at
