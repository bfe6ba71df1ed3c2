"""A task's output while it runs: masked and capped as it arrives, and published in order as
UTF-8 text that only grows, so the daemon can pass it on to the Manager before the task ends.

Masking must hold for every part that leaves the node, and a secret may arrive split across
two reads; so a tail that could still be the start of a secret is held back until the next
read (or the end) settles it. Any other text goes out at once, a line as soon as it is read.
The final result's output is exactly what was published, end to end: the parts and the result
can never disagree.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from opscaffold.protocol.task import MASK
from opscaffold.protocol.text import wire_text

MAX_PART = 256 * 1024  # bytes of output one read hands out


class OutputPart(BaseModel):
    """What `GET /tasks/{id}/output?offset=N` answers: output from `offset` (bytes) to
    `next`; `more` when there is already more beyond `next`; `running` until the output is
    complete (the result then holds all of it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: int
    data: str
    next: int
    more: bool
    running: bool


class Masker:
    """Replaces secret values with MASK in text fed piece by piece. What it releases never
    contains a secret, even one split across pieces: a tail that is the start of a secret
    waits for the next piece, and a cut never falls inside a secret."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pending = ""

    def feed(self, text: str) -> str:
        """Masked text that no later piece can change."""
        self._pending += text
        return self._release(self._safe_cut(len(self._pending) - self._held()))

    def _held(self) -> int:
        """Characters at the end that begin some secret (and might end it in the next piece)."""
        pending = self._pending
        return max(
            (
                k
                for secret in self._secrets
                for k in range(min(len(secret) - 1, len(pending)), 0, -1)
                if pending.endswith(secret[:k])
            ),
            default=0,
        )

    def flush(self) -> str:
        """Everything still held (the output ended)."""
        return self._release(len(self._pending))

    def _safe_cut(self, cut: int) -> int:
        """`cut`, moved back to the start of any secret it would split."""
        moved = True
        while moved and cut > 0:
            moved = False
            for secret in self._secrets:
                start = self._pending.find(secret, max(0, cut - len(secret) + 1))
                if -1 < start < cut:
                    cut, moved = start, True
        return cut

    def _release(self, cut: int) -> str:
        if cut <= 0:
            return ""
        head, self._pending = self._pending[:cut], self._pending[cut:]
        for secret in self._secrets:
            head = head.replace(secret, MASK)
        return wire_text(head)


class LiveOutput:
    """The published output of one execution: UTF-8 bytes that only grow; readers wait for
    more. Each part appended is whole characters, so offsets between parts are boundaries."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._grown = asyncio.Event()
        self.ended = False

    @property
    def size(self) -> int:
        return len(self._data)

    def append(self, text: str) -> None:
        if text:
            self._data += text.encode()
            self._signal()

    def end(self) -> None:
        self.ended = True
        self._signal()

    def text(self) -> str:
        return self._data.decode()

    def _signal(self) -> None:
        # A new event per change: each reader waits on the one current when it looked.
        grown, self._grown = self._grown, asyncio.Event()
        grown.set()

    async def wait_beyond(self, offset: int, seconds: float) -> None:
        """Until there is output past `offset`, the output ended, or `seconds` passed."""
        if self.size > offset or self.ended or seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._grown.wait()

    def read(self, offset: int, limit: int = MAX_PART) -> OutputPart:
        start = _boundary(self._data, min(max(offset, 0), self.size), forward=True)
        end = _boundary(self._data, min(start + limit, self.size), forward=False)
        return OutputPart(
            offset=start,
            data=self._data[start:end].decode(),
            next=end,
            more=end < self.size,
            running=not self.ended,
        )


def _boundary(data: bytearray, at: int, *, forward: bool) -> int:
    """`at`, moved to the nearest start of a UTF-8 character (forward or back)."""
    step = 1 if forward else -1
    while 0 < at < len(data) and data[at] & 0xC0 == 0x80:  # a continuation byte
        at += step
    return at


class Capture:
    """stdout+stderr as it arrives: the first `cap` bytes kept (decoded, masked and published
    to `live` as they come), the rest counted and dropped (still read, so the process never
    blocks on a full pipe)."""

    def __init__(
        self, cap: int, secrets: Iterable[str] = (), live: LiveOutput | None = None
    ) -> None:
        self.cap = cap
        self.kept = 0
        self.total = 0
        self.live = live if live is not None else LiveOutput()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._masker = Masker(secrets)

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - self.kept
        if room > 0:
            part = data[:room]
            self.kept += len(part)
            self.live.append(self._masker.feed(self._decoder.decode(part)))

    @property
    def truncated(self) -> bool:
        return self.total > self.kept

    def finish(self) -> str:
        """The whole output (what was published, then the rest), with a line saying it was
        truncated when it was. Ends the live output; calling it again changes nothing."""
        if not self.live.ended:
            rest = self._masker.feed(self._decoder.decode(b"", final=True)) + self._masker.flush()
            if self.truncated:
                rest += f"\n[output truncated: kept {self.kept} of {self.total} bytes]\n"
            self.live.append(wire_text(rest))
            self.live.end()
        return self.live.text()
